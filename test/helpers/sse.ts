/** A Server-Sent Events client for tests: the messages of a `text/event-stream` reply, parsed as they arrive. */
export interface SseMessage {
  id?: string;
  event: string;
  data: unknown;
}

export async function* sseMessages(url: string, headers: Record<string, string> = {}): AsyncGenerator<SseMessage> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  if (!res.ok || !res.body) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        const m: SseMessage = { event: 'message', data: undefined };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue; // a comment: the heartbeat
          const [field, ...rest] = line.split(':');
          const v = rest.join(':').replace(/^ /, '');
          if (field === 'id') m.id = v;
          else if (field === 'event') m.event = v;
          else if (field === 'data') data.push(v);
        }
        if (data.length === 0) continue;
        m.data = JSON.parse(data.join('\n')) as unknown;
        yield m;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

{
  "variables": { "blas_include%": "", "blas_libdir%": "", "blas_lib%": "openblas" },
  "targets": [
    {
      "target_name": "codistill_native",
      "sources": ["src/kernels.c"],
      "include_dirs": ["<(blas_include)"],
      "cflags": ["-O3", "-fno-math-errno", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-L<(blas_libdir)", "-Wl,-rpath,<(blas_libdir)", "-l<(blas_lib)", "-lm"]
    }
  ]
}

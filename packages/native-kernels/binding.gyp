{
  "targets": [
    {
      "target_name": "dropclass_native_kernels",
      "sources": ["native/addon.cc", "native/kernels.cc", "native/gemm_avx512.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"],
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/O2", "/std:c++17"] }
      }
    }
  ]
}

# Warnings, architecture flags and sanitizers shared by every repq target.
function(repq_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wcast-align
                                           # GCC 12 reports false -Wrestrict on std::string at -O3 (GCC bug 105329)
                                           $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  if(REPQ_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # Sanitizer instrumentation makes GCC's flow-based -Wmaybe-uninitialized report false
  # positives inside the standard library (std::function in <regex>); the release build keeps
  # the warning, as an error.
  if(REPQ_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
endfunction()

if(REPQ_ARCH)
  add_compile_options(-march=${REPQ_ARCH})
endif()

if(REPQ_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Programs linking the installed static library need the sanitizer runtime too.
function(repq_export_sanitizer target)
  if(REPQ_SANITIZE)
    target_link_options(${target} INTERFACE -fsanitize=address,undefined)
  endif()
endfunction()

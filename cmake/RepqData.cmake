# Image decoding libraries for src/data, included by the top-level CMakeLists.txt after the
# repq_lib target is defined:
#   JPEG: libjpeg-turbo (Debian: libjpeg-dev), the decoder PIL uses, so pixels match PIL.
#   PNG and other formats: stb_image.h (Debian: libstb-dev), header-only; its implementation
#   is compiled (with static linkage) in src/data/stb_impl.cpp.
find_package(JPEG REQUIRED)
find_path(REPQ_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb
          DOC "Folder holding stb_image.h and stb_image_write.h (Debian: libstb-dev)")
if(NOT REPQ_STB_INCLUDE_DIR)
  message(FATAL_ERROR "stb_image.h not found: install libstb-dev or set REPQ_STB_INCLUDE_DIR")
endif()

function(repq_data_link target)
  target_link_libraries(${target} PRIVATE JPEG::JPEG)
  target_include_directories(${target} SYSTEM PRIVATE ${JPEG_INCLUDE_DIRS} ${REPQ_STB_INCLUDE_DIR})
endfunction()

repq_data_link(repq_lib)

# PIL computes its resampling weights in plain double arithmetic (no fused multiply-add);
# GCC would contract a * b + c into FMA under -march=x86-64-v3, changing a weight in its last
# bit and, rarely, a pixel. Keep the data stage's floating point exactly as written.
file(GLOB REPQ_DATA_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/data/*.cpp")
set_property(SOURCE ${REPQ_DATA_SOURCES} APPEND PROPERTY COMPILE_OPTIONS -ffp-contract=off)

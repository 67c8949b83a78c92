# Fails when a file of a layer (src/LAYER/, include/hg/LAYER/) includes a header of a layer it may
# not use. Run by the configure step and by the `layers` test; lists are joined with commas:
#   cmake -DHG_ROOT=DIR -DHG_LAYERS=a,b -DHG_LAYER_a= -DHG_LAYER_b=a -P check_layers.cmake
cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" layers "${HG_LAYERS}")
set(bad 0)
foreach(layer IN LISTS layers)
  string(REPLACE "," ";" allowed "${layer},${HG_LAYER_${layer}}")
  file(GLOB files ${HG_ROOT}/src/${layer}/*.cpp ${HG_ROOT}/src/${layer}/*.h
       ${HG_ROOT}/include/hg/${layer}/*.h)
  foreach(file IN LISTS files)
    file(STRINGS ${file} includes REGEX "^#include \"hg/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"hg/([a-z_]+)/.*" "\\1" used "${line}")
      if(NOT used IN_LIST allowed)
        file(RELATIVE_PATH rel ${HG_ROOT} ${file})
        message("layers: ${rel} (layer '${layer}') includes hg/${used}/, which it may not use "
                "(it may use: ${allowed})")
        set(bad 1)
      endif()
    endforeach()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "layers: includes that point up or sideways (CMakeLists.txt lists the layers)")
endif()

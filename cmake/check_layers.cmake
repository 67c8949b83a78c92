# Fails when a file of a layer (src/LAYER/, include/hg/LAYER/) includes a header of a layer it may
# not use, or when a layer's list names a layer none of its files includes (the lists are exact).
# Run by the configure step and by the `layers` test; lists are joined with commas:
#   cmake -DHG_ROOT=DIR -DHG_LAYERS=a,b -DHG_LAYER_a= -DHG_LAYER_b=a -P check_layers.cmake
cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" layers "${HG_LAYERS}")
set(bad 0)
foreach(layer IN LISTS layers)
  string(REPLACE "," ";" allowed "${layer},${HG_LAYER_${layer}}")
  set(used_layers "")
  file(GLOB files ${HG_ROOT}/src/${layer}/*.cpp ${HG_ROOT}/src/${layer}/*.h
       ${HG_ROOT}/include/hg/${layer}/*.h)
  foreach(file IN LISTS files)
    file(STRINGS ${file} includes REGEX "^#include \"hg/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"hg/([a-z_]+)/.*" "\\1" used "${line}")
      list(APPEND used_layers ${used})
      if(NOT used IN_LIST allowed)
        file(RELATIVE_PATH rel ${HG_ROOT} ${file})
        message("layers: ${rel} (layer '${layer}') includes hg/${used}/, which it may not use "
                "(it may use: ${allowed})")
        set(bad 1)
      endif()
    endforeach()
  endforeach()
  string(REPLACE "," ";" listed "${HG_LAYER_${layer}}")
  foreach(name IN LISTS listed)
    if(NOT name IN_LIST used_layers)
      message("layers: layer '${layer}' lists '${name}', which none of its files includes "
              "(remove it from HG_LAYER_${layer} in CMakeLists.txt)")
      set(bad 1)
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "layers: includes that point up or sideways, or lists that are not exact "
                      "(CMakeLists.txt lists the layers)")
endif()

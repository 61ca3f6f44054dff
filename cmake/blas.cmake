# Chooses the BLAS the simulator links (ANEFORGE_BLAS):
#   auto            Accelerate on Apple; elsewhere scipy-openblas32, else a system CBLAS
#   accelerate      Apple's Accelerate framework (its CBLAS, with the macOS 13.3+ interface)
#   scipy-openblas  the scipy-openblas32 wheel: found through Python, or in
#                   ANEFORGE_SCIPY_OPENBLAS_DIR (an unpacked wheel's scipy_openblas32/ folder,
#                   for cross builds whose target Python is not the one running CMake)
#   system          a system CBLAS (Debian: libopenblas-dev) found by FindBLAS
set(ANEFORGE_SCIPY_OPENBLAS_DIR "" CACHE PATH "scipy_openblas32 package folder (include/, lib/) to use instead of asking Python")

# The wheel's header folder and library file. The file name comes from the wheel itself
# (get_library(fullname=True)): libscipy_openblas.so on Linux, .dylib on macOS.
function(aneforge_find_scipy_openblas out_inc out_lib)
  if(ANEFORGE_SCIPY_OPENBLAS_DIR)
    file(GLOB _libs "${ANEFORGE_SCIPY_OPENBLAS_DIR}/lib/libscipy_openblas*")
    list(FILTER _libs EXCLUDE REGEX "\\.a$")
    if(_libs)
      list(GET _libs 0 _lib)
      set(${out_inc} "${ANEFORGE_SCIPY_OPENBLAS_DIR}/include" PARENT_SCOPE)
      set(${out_lib} "${_lib}" PARENT_SCOPE)
    endif()
    return()
  endif()
  find_package(Python 3.10 QUIET COMPONENTS Interpreter)
  if(NOT Python_Interpreter_FOUND)
    return()
  endif()
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import scipy_openblas32 as s, os; print(s.get_include_dir()); print(os.path.join(s.get_lib_dir(), s.get_library(fullname=True)))"
    OUTPUT_VARIABLE _out RESULT_VARIABLE _rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_rc EQUAL 0)
    string(REPLACE "\n" ";" _lines "${_out}")
    list(GET _lines 0 _inc)
    list(GET _lines 1 _lib)
    if(EXISTS "${_lib}")
      set(${out_inc} "${_inc}" PARENT_SCOPE)
      set(${out_lib} "${_lib}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

function(aneforge_link_blas target)
  set(_choice "${ANEFORGE_BLAS}")
  if(_choice STREQUAL "auto" AND APPLE)
    set(_choice accelerate)
  endif()
  set(ANEFORGE_BLAS_IS_SCIPY OFF CACHE INTERNAL "")

  if(_choice STREQUAL "accelerate")
    # As llama.cpp's CMakeLists.txt does (LLAMA_ACCELERATE): the framework, and the macOS 13.3+
    # CBLAS interface selected by ACCELERATE_NEW_LAPACK (LP64: 32-bit ints, as our calls pass).
    find_library(ACCELERATE_FRAMEWORK Accelerate)
    if(NOT ACCELERATE_FRAMEWORK)
      message(FATAL_ERROR "ANEFORGE_BLAS=${ANEFORGE_BLAS}: the Accelerate framework was not found (is this macOS with the Xcode command-line tools?)")
    endif()
    message(STATUS "aneforge: BLAS = Accelerate (${ACCELERATE_FRAMEWORK})")
    target_compile_definitions(${target} PRIVATE AF_BLAS_ACCELERATE=1 ACCELERATE_NEW_LAPACK=1)
    target_link_libraries(${target} PUBLIC "${ACCELERATE_FRAMEWORK}")
    return()
  endif()

  if(_choice STREQUAL "auto" OR _choice STREQUAL "scipy-openblas")
    aneforge_find_scipy_openblas(_inc _lib)
    if(_lib)
      message(STATUS "aneforge: BLAS = scipy-openblas32 (${_lib})")
      target_include_directories(${target} PRIVATE "${_inc}")
      target_compile_definitions(${target} PRIVATE AF_BLAS_SCIPY=1)
      target_link_libraries(${target} PUBLIC "${_lib}")
      set(ANEFORGE_BLAS_IS_SCIPY ON CACHE INTERNAL "")
      return()
    elseif(_choice STREQUAL "scipy-openblas")
      message(FATAL_ERROR "ANEFORGE_BLAS=scipy-openblas but the scipy-openblas32 package was not found "
                          "(pip install scipy-openblas32, or set ANEFORGE_SCIPY_OPENBLAS_DIR)")
    endif()
  elseif(NOT _choice STREQUAL "system")
    message(FATAL_ERROR "ANEFORGE_BLAS='${ANEFORGE_BLAS}': expected auto, accelerate, scipy-openblas or system")
  endif()

  string(CONCAT _hint "ANEForge's simulator needs a BLAS with CBLAS headers. Either install one "
         "system-wide (Debian/Ubuntu: sudo apt-get install libopenblas-dev) or pip install "
         "scipy-openblas32 into the Python CMake uses (pass -DPython_EXECUTABLE=/path/to/python), "
         "then configure again.")
  find_package(BLAS QUIET)
  if(NOT BLAS_FOUND)
    message(FATAL_ERROR "No BLAS found. ${_hint}")
  endif()
  find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
  if(NOT CBLAS_INCLUDE_DIR)
    message(FATAL_ERROR "A BLAS library (${BLAS_LIBRARIES}) was found but not its cblas.h. ${_hint}")
  endif()
  message(STATUS "aneforge: BLAS = system (${BLAS_LIBRARIES})")
  target_include_directories(${target} PRIVATE "${CBLAS_INCLUDE_DIR}")
  target_link_libraries(${target} PUBLIC ${BLAS_LIBRARIES})
endfunction()

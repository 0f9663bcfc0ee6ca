# keel_library(NAME SOURCES ... DEPS ...): a module library with a keel:: alias.
# The project root is the include root, so sources include "store/event_store.h".
function(keel_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(keel::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                                            $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  keel_set_warnings(${name})
endfunction()

# keel_test(NAME SOURCES ... DEPS ... [LABELS ...]): one gtest binary, tests discovered.
function(keel_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} keel_test_support GTest::gtest GTest::gmock GTest::gtest_main)
  keel_set_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}"
                       ENVIRONMENT "KEEL_BIN=${PROJECT_BINARY_DIR}/bin/keel")
endfunction()

function(keel_set_warnings target)
  # Designated initializers name only the fields they set (C++20 style).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                                           -Wno-missing-field-initializers)
  if(KEEL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(KEEL_SANITIZERS)
    target_compile_options(${target} PRIVATE -fsanitize=${KEEL_SANITIZERS} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${KEEL_SANITIZERS})
  endif()
endfunction()

# keel_use_jemalloc(TARGET): a program's malloc is jemalloc (KEEL_JEMALLOC;
# never with sanitizers, which bring their own).
function(keel_use_jemalloc target)
  if(TARGET PkgConfig::JEMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
  endif()
endfunction()

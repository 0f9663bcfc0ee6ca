# Install rules (KEEL_INSTALL): the public headers, the static libraries, the
# CLI, and what lets another CMake project find_package(keel) and link
# keel::keel, or another build use pkg-config (keel.pc).
include(CMakePackageConfigHelpers)

set(KEEL_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/keel)

# Only include/keel/: the public headers include nothing else of keel's.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/keel DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")

# Every floor is exported (keel::keel_base ... keel::keel_http): static
# libraries carry their dependencies to the program that links them.
install(TARGETS keel_base keel_schema keel_events keel_workflow keel_store keel_actors
                keel_runtime keel_http keel_keel
        EXPORT keelTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS keel RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT keelTargets NAMESPACE keel:: DESTINATION ${KEEL_CMAKE_INSTALL_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/keelConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/keelConfig.cmake
                              INSTALL_DESTINATION ${KEEL_CMAKE_INSTALL_DIR})
# 0.x: a minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
# FindCAF.cmake goes along: Debian's CAF 0.17 ships no CMake config.
install(FILES ${PROJECT_BINARY_DIR}/keelConfig.cmake ${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/FindCAF.cmake
        DESTINATION ${KEEL_CMAKE_INSTALL_DIR})

# keel.pc: paths relative to the file, so the prefix given to
# `cmake --install --prefix` is the one it names. CAF has no .pc of its own.
set(KEEL_PC_CAF_CFLAGS "")
if(NOT CAF_INCLUDE_DIR IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
  set(KEEL_PC_CAF_CFLAGS "-I${CAF_INCLUDE_DIR}")
endif()
get_filename_component(_keel_caf_libdir ${CAF_CORE_LIBRARY} DIRECTORY)
set(KEEL_PC_CAF_LIBS "-lcaf_core")
if(NOT _keel_caf_libdir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
  set(KEEL_PC_CAF_LIBS "-L${_keel_caf_libdir} -lcaf_core")
endif()
file(RELATIVE_PATH KEEL_PC_PREFIX_FROM_PCDIR
     ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" KEEL_PC_PREFIX_FROM_PCDIR "${KEEL_PC_PREFIX_FROM_PCDIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/keel.pc.in ${PROJECT_BINARY_DIR}/keel.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/keel.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

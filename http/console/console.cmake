# keel_add_console(TARGET): compiles the web console's static files (this
# directory's .html, .css and .js) into TARGET, with console.cc which serves
# them. The files become byte arrays in a generated source at build time, so
# the binary needs nothing at run time; editing a file regenerates it.
set(KEEL_CONSOLE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(keel_add_console target)
  set(assets
    ${KEEL_CONSOLE_DIR}/index.html
    ${KEEL_CONSOLE_DIR}/console.css
    ${KEEL_CONSOLE_DIR}/console.js)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/console_assets.cc)
  add_custom_command(
    OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} -DOUT=${generated} "-DASSETS=${assets}"
            -P ${KEEL_CONSOLE_DIR}/embed_assets.cmake
    DEPENDS ${assets} ${KEEL_CONSOLE_DIR}/embed_assets.cmake
    COMMENT "Embedding the web console's files"
    VERBATIM)
  target_sources(${target} PRIVATE ${KEEL_CONSOLE_DIR}/console.cc ${generated})
endfunction()

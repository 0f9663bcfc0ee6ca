# cmake -DOUT=file.cc -DASSETS="a;b;c" -P embed_assets.cmake
# Writes OUT: one byte array per asset and the table console_assets.h declares,
# each asset named /console/<file name>.
set(body "// Generated from http/console by embed_assets.cmake; do not edit.\n")
string(APPEND body "#include \"http/console/console_assets.h\"\n\nnamespace keel::http {\nnamespace {\n")
set(table "")
set(index 0)
foreach(asset IN LISTS ASSETS)
  get_filename_component(name ${asset} NAME)
  file(READ ${asset} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # Lines of 32 bytes keep the generated file readable by an editor.
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
  string(APPEND body "const unsigned char kAsset${index}[] = {\n${bytes}0x00};\n")
  string(APPEND table "    {\"/console/${name}\", kAsset${index}, ${size}},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND body "}  // namespace\n\nconst ConsoleAsset kConsoleAssets[] = {\n${table}};\n")
string(APPEND body "const size_t kConsoleAssetCount = ${index};\n\n}  // namespace keel::http\n")
# Written only when it changed, so that an unchanged console recompiles nothing.
set(previous "")
if(EXISTS ${OUT})
  file(READ ${OUT} previous)
endif()
if(NOT previous STREQUAL body)
  file(WRITE ${OUT} "${body}")
endif()

#include "workflow/expression.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <list>
#include <lua.hpp>
#include <unordered_map>
#include <vector>

// Lua raises errors with longjmp (liblua is C). Code that runs between a Lua
// API call that can raise (anything that allocates) and the enclosing
// lua_pcall therefore holds no C++ object with a destructor: JSON is walked
// through references and trivially destructible iterators only. Outside
// protected calls only non-allocating API functions are used (lua_next,
// lua_rawgeti, lua_to*, lua_checkstack, lua_setupvalue of an existing upvalue).

namespace keel {
namespace {

constexpr int kMaxDepth = 100;
constexpr const char kChunkName[] = "=expr";
constexpr size_t kQuoteMax = 160;

// `text` for a message, shortened when long.
std::string Quote(std::string_view text) {
  if (text.size() <= kQuoteMax) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kQuoteMax)) + "...'";
}

// Lua's message without the "expr:1: " position (every expression is line 1
// of its own chunk, so the position says nothing).
std::string CleanLuaMessage(std::string_view msg) {
  std::string_view prefix = "expr:";
  if (msg.substr(0, prefix.size()) == prefix) {
    size_t colon = msg.find(": ", prefix.size());
    if (colon != std::string_view::npos) msg.remove_prefix(colon + 2);
  }
  return std::string(msg);
}

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

// Level of a Lua long bracket opening at `i` ("[[" = 0, "[==[" = 2), or -1.
int LongBracketLevel(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '[') return -1;
  size_t j = i + 1;
  int level = 0;
  while (j < s.size() && s[j] == '=') ++j, ++level;
  return j < s.size() && s[j] == '[' ? level : -1;
}

// Copies a long bracket body starting at `i` (the opening '[') and returns
// the index after its close (or the end of `s` when it does not close).
size_t CopyLongBracket(std::string_view s, size_t i, int level, std::string& out) {
  std::string close = "]" + std::string(static_cast<size_t>(level), '=') + "]";
  size_t end = s.find(close, i + static_cast<size_t>(level) + 2);
  end = end == std::string_view::npos ? s.size() : end + close.size();
  out.append(s.substr(i, end - i));
  return end;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;  // continuation bytes
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;  // overlong, out of range or a surrogate
    }
    i += n + 1;
  }
  return true;
}

// One piece of a template: literal text or the text of a ${...} expression.
struct Part {
  bool is_expr = false;
  std::string text;
};

Status ParseTemplate(std::string_view text, std::vector<Part>& parts) {
  parts.clear();
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      literal += text[i++];
      continue;
    }
    size_t start = i + 2, j = start;
    int depth = 1;
    char quote = 0;
    for (; j < text.size(); ++j) {
      char c = text[j];
      if (quote != 0) {
        if (c == '\\')
          ++j;
        else if (c == quote)
          quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}' && --depth == 0) {
        break;
      }
    }
    if (j >= text.size()) {
      return Status::InvalidArgument("template " + Quote(text) + " has an unterminated ${");
    }
    std::string_view expr = text.substr(start, j - start);
    size_t first = expr.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
      return Status::InvalidArgument("template " + Quote(text) + " has an empty ${}");
    }
    if (!literal.empty()) parts.push_back({false, std::move(literal)});
    literal.clear();
    parts.push_back({true, std::string(expr)});
    i = j + 1;
  }
  if (!literal.empty() || parts.empty()) parts.push_back({false, std::move(literal)});
  return Status::OK();
}

// Text of a value interpolated into a template: a string raw, anything else
// as compact JSON (numbers are already integers when integral, see ToJson).
std::string InterpolationText(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Compiles "return <expr>" on `L` without running it; leaves the function on
// the stack when ok. Errors name the expression.
Status Compile(lua_State* L, std::string_view expr) {
  if (expr.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Status::InvalidArgument("expression is empty");
  }
  std::string code = "return " + ExpressionEngine::Translate(expr);
  int rc = luaL_loadbufferx(L, code.data(), code.size(), kChunkName, "t");
  if (rc == LUA_OK) return Status::OK();
  std::string msg = rc == LUA_ERRMEM || lua_type(L, -1) != LUA_TSTRING
                        ? std::string("out of memory")
                        : CleanLuaMessage(lua_tostring(L, -1));
  lua_pop(L, 1);
  return Status::InvalidArgument("expression " + Quote(expr) + " does not parse: " + msg);
}

struct LuaCloser {
  void operator()(lua_State* L) const { lua_close(L); }
};

// A bare state that only compiles, for the static checks.
lua_State* CompileState() {
  thread_local std::unique_ptr<lua_State, LuaCloser> state(luaL_newstate());
  return state.get();
}

}  // namespace

struct ExpressionEngine::Impl {
  explicit Impl(ExpressionLimits l) : limits(l) {}

  ExpressionLimits limits;
  lua_State* L = nullptr;
  size_t used = 0;                               // bytes allocated by L
  bool limit_on = false;                         // memory limit enforced
  bool exhausted = false;                        // the running evaluation ran out of instructions
  const Json* context = nullptr;                 // of the running evaluation
  const ExpressionEngine::More* more = nullptr;  // its keys that `context` lacks
  int env_meta_ref = LUA_NOREF;
  int array_meta_ref = LUA_NOREF;
  int object_meta_ref = LUA_NOREF;

  // Compiled chunks by expression text, most recently used first.
  struct Cached {
    int ref;
    std::list<std::string>::iterator lru;
  };
  std::unordered_map<std::string, Cached> cache;
  std::list<std::string> lru;

  static Impl* From(lua_State* L) {
    void* ud = nullptr;
    lua_getallocf(L, &ud);
    return static_cast<Impl*>(ud);
  }

  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
    auto* impl = static_cast<Impl*>(ud);
    size_t old = ptr != nullptr ? osize : 0;  // with no block, osize is a type tag
    if (nsize == 0) {
      std::free(ptr);
      impl->used -= old;
      return nullptr;
    }
    if (impl->limit_on && nsize > old && impl->used - old + nsize > impl->limits.memory_bytes) {
      return nullptr;  // Lua collects garbage and retries once, then raises LUA_ERRMEM
    }
    void* p = std::realloc(ptr, nsize);
    if (p != nullptr) impl->used = impl->used - old + nsize;
    return p;
  }

  static void Hook(lua_State* L, lua_Debug*) {
    Impl* impl = From(L);
    impl->exhausted = true;
    // From now on every instruction fails, so an expression that catches the
    // error with pcall cannot keep running.
    lua_sethook(L, Hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "expression exceeded its instruction budget (%I instructions)",
               static_cast<lua_Integer>(impl->limits.instructions));
  }

  static int ReadOnly(lua_State* L) {
    return luaL_error(L, "the standard libraries are read-only");
  }

  // Pushes `j` as a Lua value (see the header for the mapping).
  static void Push(lua_State* L, Impl* impl, const Json& j, int depth) {
    if (depth > kMaxDepth) luaL_error(L, "the context is nested too deeply");
    luaL_checkstack(L, 4, "the context is nested too deeply");
    switch (j.type()) {
      case Json::value_t::boolean:
        lua_pushboolean(L, j.get<bool>() ? 1 : 0);
        return;
      case Json::value_t::number_integer:
        lua_pushinteger(L, j.get<int64_t>());
        return;
      case Json::value_t::number_unsigned: {
        uint64_t u = j.get<uint64_t>();
        if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          lua_pushinteger(L, static_cast<lua_Integer>(u));
        } else {
          lua_pushnumber(L, static_cast<lua_Number>(u));
        }
        return;
      }
      case Json::value_t::number_float:
        lua_pushnumber(L, j.get<double>());
        return;
      case Json::value_t::string: {
        const std::string& s = j.get_ref<const std::string&>();
        lua_pushlstring(L, s.data(), s.size());
        return;
      }
      case Json::value_t::array: {
        lua_createtable(L, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)), 0);
        lua_Integer i = 1;
        for (auto it = j.cbegin(); it != j.cend(); ++it, ++i) {
          if (it->is_null()) continue;
          Push(L, impl, *it, depth + 1);
          lua_rawseti(L, -2, i);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, impl->array_meta_ref);
        lua_setmetatable(L, -2);
        return;
      }
      case Json::value_t::object: {
        lua_createtable(L, 0, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)));
        for (auto it = j.cbegin(); it != j.cend(); ++it) {
          if (it->is_null()) continue;
          const std::string& key = it.key();
          lua_pushlstring(L, key.data(), key.size());
          Push(L, impl, *it, depth + 1);
          lua_rawset(L, -3);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, impl->object_meta_ref);
        lua_setmetatable(L, -2);
        return;
      }
      default:  // null, discarded, binary
        lua_pushnil(L);
        return;
    }
  }

  // __index of an evaluation's globals: a context key (converted on first
  // use and kept), else the sandbox's globals (upvalue 2).
  static int EnvIndex(lua_State* L) {
    Impl* impl = From(L);
    if (lua_type(L, 2) == LUA_TSTRING && impl->context != nullptr && impl->context->is_object()) {
      size_t len = 0;
      const char* k = lua_tolstring(L, 2, &len);
      const Json* found = nullptr;
      {
        auto it = impl->context->find(std::string_view(k, len));
        if (it != impl->context->end()) {
          found = &*it;
        } else if (impl->more != nullptr && *impl->more) {
          const Json& more = (*impl->more)();
          auto extra = more.find(std::string_view(k, len));
          if (extra != more.end()) found = &*extra;
        }
      }
      if (found != nullptr) {
        Push(L, impl, *found, 0);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);
        return 1;
      }
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
  }

  // Builds the sandbox (in protected mode: the allocations may fail).
  static int Setup(lua_State* L) {
    Impl* impl = From(L);
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_settop(L, 0);

    lua_newtable(L);  // 1: the sandbox's globals
    static const char* const kBase[] = {"assert",   "error",    "ipairs", "next",   "pairs",
                                        "pcall",    "rawequal", "rawget", "rawlen", "select",
                                        "tonumber", "tostring", "type",   "xpcall", "_VERSION"};
    for (const char* name : kBase) {
      lua_getglobal(L, name);
      lua_setfield(L, 1, name);
    }
    static const char* const kLibs[] = {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME,
                                        LUA_UTF8LIBNAME};
    for (const char* lib : kLibs) {
      lua_newtable(L);  // read-only proxy
      lua_newtable(L);  // its metatable
      lua_getglobal(L, lib);
      lua_setfield(L, -2, "__index");
      lua_pushcfunction(L, ReadOnly);
      lua_setfield(L, -2, "__newindex");
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "__metatable");
      lua_setmetatable(L, -2);
      lua_setfield(L, 1, lib);
    }
    // Strings index the real string table through their metatable; keep it hidden.
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "__metatable");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);

    lua_newtable(L);  // metatable of every evaluation's globals
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, EnvIndex, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    impl->env_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    // Markers: tables that came from JSON arrays / objects keep their shape.
    lua_newtable(L);
    impl->array_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    impl->object_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return 0;
  }

  // Runs the chunk (argument 1) with fresh globals; returns its value.
  static int Run(lua_State* L) {
    Impl* impl = From(L);
    lua_createtable(L, 0, 4);
    lua_rawgeti(L, LUA_REGISTRYINDEX, impl->env_meta_ref);
    lua_setmetatable(L, -2);
    lua_setupvalue(L, 1, 1);  // the chunk's _ENV
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    return 1;
  }

  struct CompileArgs {
    std::string_view expr;
    Status status;
    int ref = LUA_NOREF;
  };

  // Compiles and references a chunk (protected: luaL_ref may allocate).
  static int CompileAndRef(lua_State* L) {
    auto* args = static_cast<CompileArgs*>(lua_touserdata(L, 1));
    args->status = Compile(L, args->expr);  // lua_load itself never raises
    if (!args->status.ok()) return 0;
    args->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
  }

  std::string MemoryMessage(std::string_view expr) const {
    return "expression exceeded its memory limit (" + std::to_string(limits.memory_bytes >> 20) +
           " MiB): " + Quote(expr);
  }

  // The registry reference of the compiled `expr`.
  Result<int> Chunk(std::string_view expr) {
    std::string key(expr);
    auto it = cache.find(key);
    if (it != cache.end()) {
      lru.splice(lru.begin(), lru, it->second.lru);
      return it->second.ref;
    }
    CompileArgs args{expr, Status::OK(), LUA_NOREF};
    lua_settop(L, 0);
    lua_pushcfunction(L, CompileAndRef);
    lua_pushlightuserdata(L, &args);
    int rc = lua_pcall(L, 1, 0, 0);
    lua_settop(L, 0);
    if (rc != LUA_OK) return Status::InvalidArgument(MemoryMessage(expr));
    if (!args.status.ok()) return args.status;
    if (cache.size() >= std::max<size_t>(limits.cache_entries, 1)) {
      auto victim = cache.find(lru.back());
      luaL_unref(L, LUA_REGISTRYINDEX, victim->second.ref);
      cache.erase(victim);
      lru.pop_back();
    }
    lru.push_front(key);
    cache.emplace(std::move(key), Cached{args.ref, lru.begin()});
    return args.ref;
  }

  // The Lua value at `idx` as JSON (outside protected mode: no allocations).
  Status ToJson(int idx, int depth, Json& out) {
    switch (lua_type(L, idx)) {
      case LUA_TNIL:
      case LUA_TNONE:
        out = nullptr;
        return Status::OK();
      case LUA_TBOOLEAN:
        out = lua_toboolean(L, idx) != 0;
        return Status::OK();
      case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) {
          out = static_cast<int64_t>(lua_tointeger(L, idx));
          return Status::OK();
        }
        double d = lua_tonumber(L, idx);
        if (!std::isfinite(d))
          return Status::InvalidArgument("gave a number JSON cannot hold (" +
                                         std::string(std::isnan(d) ? "nan" : "inf") + ")");
        if (d == std::trunc(d) && d >= -9.2e18 && d <= 9.2e18) {
          out = static_cast<int64_t>(d);
        } else {
          out = d;
        }
        return Status::OK();
      }
      case LUA_TSTRING: {
        size_t len = 0;
        const char* s = lua_tolstring(L, idx, &len);
        std::string_view sv(s, len);
        if (!ValidUtf8(sv)) return Status::InvalidArgument("gave a string that is not UTF-8");
        out = std::string(sv);
        return Status::OK();
      }
      case LUA_TTABLE:
        return TableToJson(idx, depth, out);
      default:
        return Status::InvalidArgument(std::string("gave a ") + lua_typename(L, lua_type(L, idx)) +
                                       ", which has no JSON form");
    }
  }

  Status TableToJson(int idx, int depth, Json& out) {
    if (depth >= kMaxDepth || !lua_checkstack(L, 4)) {
      return Status::InvalidArgument("gave a table nested too deeply (a cycle?)");
    }
    bool marked_array = false, marked_object = false;
    if (lua_getmetatable(L, idx)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, array_meta_ref);
      marked_array = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
      lua_rawgeti(L, LUA_REGISTRYINDEX, object_meta_ref);
      marked_object = lua_rawequal(L, -1, -2);
      lua_pop(L, 2);
    }
    size_t count = 0;
    lua_Integer max_key = 0;
    bool all_positive_integers = true;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      ++count;
      if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
        max_key = std::max(max_key, lua_tointeger(L, -2));
      } else {
        all_positive_integers = false;
      }
      lua_pop(L, 1);
    }
    bool array;
    if (count == 0) {
      array = !marked_object;
    } else {
      // A JSON array with nulls comes back with holes; allow those, bounded.
      array = all_positive_integers &&
              (static_cast<size_t>(max_key) == count ||
               (marked_array && static_cast<size_t>(max_key) <= 2 * count + 16));
    }
    if (array) {
      out = Json::array();
      for (lua_Integer i = 1; i <= max_key; ++i) {
        lua_rawgeti(L, idx, i);
        Json v;
        Status s = ToJson(lua_gettop(L), depth + 1, v);
        lua_pop(L, 1);
        if (!s.ok()) return s;
        out.push_back(std::move(v));
      }
      return Status::OK();
    }
    out = Json::object();
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      std::string key;
      switch (lua_type(L, -2)) {
        case LUA_TSTRING: {
          size_t len = 0;
          const char* k = lua_tolstring(L, -2, &len);
          key.assign(k, len);
          if (!ValidUtf8(key)) {
            lua_pop(L, 2);
            return Status::InvalidArgument("gave a table key that is not UTF-8");
          }
          break;
        }
        case LUA_TNUMBER:
          if (lua_isinteger(L, -2)) {
            key = std::to_string(lua_tointeger(L, -2));
          } else {
            key = Json(lua_tonumber(L, -2)).dump();
          }
          break;
        case LUA_TBOOLEAN:
          key = lua_toboolean(L, -2) ? "true" : "false";
          break;
        default:
          lua_pop(L, 2);
          return Status::InvalidArgument(std::string("gave a table with a ") +
                                         lua_typename(L, lua_type(L, -2)) + " key");
      }
      Json v;
      Status s = ToJson(lua_gettop(L), depth + 1, v);
      if (!s.ok()) {
        lua_pop(L, 2);
        return s;
      }
      if (!v.is_null()) out[key] = std::move(v);
      lua_pop(L, 1);
    }
    return Status::OK();
  }

  Result<Json> Evaluate(std::string_view expr, const Json& ctx,
                        const ExpressionEngine::More& extra) {
    if (L == nullptr) return Status::Internal("the expression engine has no Lua state");
    auto ref = Chunk(expr);
    if (!ref.ok()) return ref.status();
    lua_settop(L, 0);
    lua_pushcfunction(L, Run);
    lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
    context = &ctx;
    more = &extra;
    exhausted = false;
    lua_sethook(L, Hook, LUA_MASKCOUNT,
                static_cast<int>(std::min<uint64_t>(limits.instructions, INT32_MAX)));
    int rc = lua_pcall(L, 1, 1, 0);
    lua_sethook(L, nullptr, 0, 0);
    context = nullptr;
    more = nullptr;
    // Drop the globals from the cached chunk so the context can be collected.
    lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
    lua_pushnil(L);
    lua_setupvalue(L, -2, 1);
    lua_pop(L, 1);
    if (rc != LUA_OK) {
      std::string msg;
      if (exhausted) {
        msg = "expression exceeded its instruction budget (" + std::to_string(limits.instructions) +
              " instructions): " + Quote(expr);
      } else if (rc == LUA_ERRMEM) {
        msg = MemoryMessage(expr);
      } else if (lua_type(L, -1) == LUA_TSTRING) {
        msg = "expression " + Quote(expr) + " failed: " + CleanLuaMessage(lua_tostring(L, -1));
      } else {
        msg = "expression " + Quote(expr) + " failed: it raised an error that is not a string";
      }
      lua_settop(L, 0);
      if (rc == LUA_ERRMEM) lua_gc(L, LUA_GCCOLLECT);
      return Status::InvalidArgument(msg);
    }
    Json out;
    limit_on = false;  // conversion must not fail halfway for lack of memory
    Status s = ToJson(lua_gettop(L), 0, out);
    limit_on = true;
    lua_settop(L, 0);
    if (!s.ok()) return Status::InvalidArgument("expression " + Quote(expr) + " " + s.message());
    return out;
  }
};

ExpressionEngine::ExpressionEngine() : ExpressionEngine(ExpressionLimits{}) {}

ExpressionEngine::ExpressionEngine(ExpressionLimits limits)
    : impl_(std::make_unique<Impl>(limits)) {
  lua_State* L = lua_newstate(&Impl::Alloc, impl_.get());
  if (L == nullptr) return;
  lua_pushcfunction(L, &Impl::Setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return;
  }
  impl_->L = L;
  impl_->limit_on = true;
}

ExpressionEngine::~ExpressionEngine() {
  if (impl_->L != nullptr) {
    impl_->limit_on = false;
    lua_close(impl_->L);
  }
}

Result<Json> ExpressionEngine::Evaluate(std::string_view expr, const Json& context,
                                        const More& more) {
  return impl_->Evaluate(expr, context, more);
}

Result<bool> ExpressionEngine::Test(std::string_view expr, const Json& context) {
  auto v = Evaluate(expr, context);
  if (!v.ok()) return v.status();
  return Truthy(*v);
}

Result<Json> ExpressionEngine::Render(const Json& value, const Json& context, const More& more) {
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& v : value) {
      auto r = Render(v, context, more);
      if (!r.ok()) return r.status();
      out.push_back(std::move(*r));
    }
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      auto r = Render(*it, context, more);
      if (!r.ok()) return r.status();
      out[it.key()] = std::move(*r);
    }
    return out;
  }
  if (!value.is_string()) return value;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.find("${") == std::string::npos) return value;  // no part, no escape
  std::vector<Part> parts;
  KEEL_RETURN_IF_ERROR(ParseTemplate(text, parts));
  if (parts.size() == 1 && parts[0].is_expr) return Evaluate(parts[0].text, context, more);
  std::string out;
  for (const auto& part : parts) {
    if (!part.is_expr) {
      out += part.text;
      continue;
    }
    auto v = Evaluate(part.text, context, more);
    if (!v.ok()) return v.status();
    out += InterpolationText(*v);
  }
  return Json(std::move(out));
}

Status ExpressionEngine::Check(std::string_view expr) {
  lua_State* L = CompileState();
  if (L == nullptr) return Status::Internal("cannot create a Lua state");
  Status s = Compile(L, expr);
  lua_settop(L, 0);
  return s;
}

Status ExpressionEngine::CheckTemplate(std::string_view text) {
  if (text.find("${") == std::string_view::npos) return Status::OK();
  std::vector<Part> parts;
  KEEL_RETURN_IF_ERROR(ParseTemplate(text, parts));
  for (const auto& part : parts) {
    if (part.is_expr) KEEL_RETURN_IF_ERROR(Check(part.text));
  }
  return Status::OK();
}

bool ExpressionEngine::IsTemplate(std::string_view text) {
  return text.find("${") != std::string_view::npos;
}

bool ExpressionEngine::Truthy(const Json& value) {
  return !(value.is_null() || (value.is_boolean() && !value.get<bool>()));
}

std::string ExpressionEngine::Translate(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 16);
  auto last_significant = [&out]() -> char {
    for (auto it = out.rbegin(); it != out.rend(); ++it) {
      if (*it != ' ' && *it != '\t' && *it != '\r' && *it != '\n') return *it;
    }
    return 0;
  };
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    char c = in[i];
    char next = i + 1 < n ? in[i + 1] : 0;
    if (c == '-' && next == '-') {  // comment: short or long
      int level = LongBracketLevel(in, i + 2);
      if (level >= 0) {
        out += "--";
        i = CopyLongBracket(in, i + 2, level, out);
      } else {
        size_t end = in.find('\n', i);
        end = end == std::string_view::npos ? n : end;
        out.append(in.substr(i, end - i));
        i = end;
      }
      continue;
    }
    if (c == '[') {
      int level = LongBracketLevel(in, i);
      if (level >= 0) {
        i = CopyLongBracket(in, i, level, out);
        continue;
      }
    }
    if (c == '"' || c == '\'') {  // short string, escapes included
      size_t j = i + 1;
      while (j < n && in[j] != c && in[j] != '\n') j += in[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, n);
      out.append(in.substr(i, j - i));
      i = j;
      continue;
    }
    if (c >= '0' && c <= '9') {  // a number, so "0x1f" is not read as a name
      size_t j = i;
      while (j < n && (IsIdentChar(in[j]) || in[j] == '.')) ++j;
      out.append(in.substr(i, j - i));
      i = j;
      continue;
    }
    if (IsIdentStart(c)) {
      size_t j = i;
      while (j < n && IsIdentChar(in[j])) ++j;
      std::string_view word = in.substr(i, j - i);
      char before = last_significant();
      if (word == "null" && before != '.' && before != ':') {
        out += "nil";
      } else {
        out.append(word);
      }
      i = j;
      continue;
    }
    if (in.compare(i, 3, "!==") == 0) {
      out += "~=";
      i += 3;
    } else if (in.compare(i, 3, "===") == 0) {
      out += "==";
      i += 3;
    } else if (c == '!' && next == '=') {
      out += "~=";
      i += 2;
    } else if (c == '&' && next == '&') {
      out += " and ";
      i += 2;
    } else if (c == '|' && next == '|') {
      out += " or ";
      i += 2;
    } else if (c == '!') {
      out += " not ";
      i += 1;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

}  // namespace keel

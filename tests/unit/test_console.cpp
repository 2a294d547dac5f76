// console_asset(): the embedded web console files by request path, their content types,
// and the paths that must not resolve (other prefixes, dot files, directories, escapes).
#include <catch2/catch.hpp>

#include <string>

#include "agent/console/console.hpp"

using envrun::agent::console_asset;

TEST_CASE("the page is served for / and /ui/") {
  for (const char* p : {"/", "/ui", "/ui/", "/index.html", "/?x=1", "/ui/index.html"}) {
    INFO(p);
    auto a = console_asset(p);
    REQUIRE(a);
    CHECK(a->second == "text/html; charset=utf-8");
    CHECK(a->first.find("<!doctype html>") != std::string_view::npos);
    CHECK(a->first.find("id=\"login-form\"") != std::string_view::npos);
  }
}

TEST_CASE("scripts and styles have their content types and whole content") {
  auto js = console_asset("/ui/app.js");
  REQUIRE(js);
  CHECK(js->second == "text/javascript; charset=utf-8");
  CHECK(js->first.find("Authorization: 'Bearer '") != std::string_view::npos);
  CHECK(js->first.substr(js->first.size() - 4) == "});\n");  // the file's last line, whole
  CHECK(js->first.find('\0') == std::string_view::npos);
  auto chart = console_asset("/ui/chart.js");
  REQUIRE(chart);
  CHECK(chart->first.find("/v1/usage?") != std::string_view::npos);
  auto css = console_asset("/ui/style.css?v=2");
  REQUIRE(css);
  CHECK(css->second == "text/css; charset=utf-8");
}

TEST_CASE("other paths are not console files") {
  for (const char* p : {"", "/v1/bundles", "/ui/missing.js", "/ui/../app.js", "/ui/./app.js", "/ui/x/app.js",
                        "/ui/%2e%2e/app.js", "/ui/.hidden", "/app.js", "/uiapp.js", "/ui//app.js", "ui/app.js"}) {
    INFO(p);
    CHECK_FALSE(console_asset(p));
  }
}

// Result<T>: the error-carrying return type used by every envrun library.
// An Error holds errno (0 when not a system error), a kind that the CLI maps
// to an exit code, and a human message that already names file/field/reason.
#pragma once
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace envrun {

enum class ErrorKind {
  Generic,    // exit 1
  Usage,      // exit 2: bad command line
  Config,     // exit 3: bundle / config.json / config.yaml invalid
  NotFound,   // exit 4: container does not exist
  State,      // exit 5: container exists / is in the wrong state
  Exec,       // exit 6: the process could not be started (e.g. not in rootfs)
  System,     // exit 7: a kernel facility failed or is missing
};

struct Error {
  int sys_errno = 0;
  ErrorKind kind = ErrorKind::Generic;
  std::string message;

  static Error make(ErrorKind k, std::string msg) { return Error{0, k, std::move(msg)}; }
  // "<what>: <strerror(e)>"
  static Error sys(std::string what, int e = errno) {
    return Error{e, ErrorKind::System, std::move(what) + ": " + std::strerror(e)};
  }
  // Prefix the message with context: "ctx: message".
  Error&& with_context(const std::string& ctx) && {
    message = ctx + ": " + message;
    return std::move(*this);
  }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool failed_ = false;
};

inline Result<void> ok() { return {}; }

}  // namespace envrun

// Propagate an error; on success evaluate to the value (GNU statement expression).
#define ENVRUN_TRY(expr)                                    \
  ({                                                        \
    auto envrun_r_ = (expr);                                \
    if (!envrun_r_) return std::move(envrun_r_).error();    \
    std::move(envrun_r_).value();                           \
  })
#define ENVRUN_CHECK(expr)                                  \
  do {                                                      \
    auto envrun_r_ = (expr);                                \
    if (!envrun_r_) return std::move(envrun_r_).error();    \
  } while (0)

// The exit status of an error kind (documented in envrun(1)); shared by envrun and its
// registry helper envrun-pull.
#pragma once
#include "kernel/result.hpp"

namespace envrun::cli {

inline int exit_code(ErrorKind k) {
  switch (k) {
    case ErrorKind::Generic: return 1;
    case ErrorKind::Usage: return 2;
    case ErrorKind::Config: return 3;
    case ErrorKind::NotFound: return 4;
    case ErrorKind::State: return 5;
    case ErrorKind::Exec: return 6;
    case ErrorKind::System: return 7;
  }
  return 1;
}

}  // namespace envrun::cli

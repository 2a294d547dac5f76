#include "bundle/spec_parser.hpp"

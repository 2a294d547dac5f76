// Union directory listings (dir_union.hpp).
#include "intercept/dir_union.hpp"

namespace envrun::icpt {

void union_forget_fd(int) {}
void union_forget_range(unsigned, unsigned) {}

}  // namespace envrun::icpt

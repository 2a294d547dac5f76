// Sockets and epoll registrations at restore time. Sockets are made by the root stub,
// inside the restored tree's network namespace, before it forks the others (who
// inherit them); epoll instances are filled by their owner once its fd table is set.
#pragma once
#include <map>

#include "ckpt/restore_plan.hpp"

namespace envrun::ckpt {

// Every Socket file of the plan: made, options set, bound, listening or paired with its
// peer (unix pairs, with the bytes that were queued), fd status flags as dumped.
Result<void> open_sockets(const Plan& p, std::map<uint64_t, UniqueFd>& out);
// The registrations of the epoll instances `core` owns (OpenFile::owner).
Result<void> fill_epolls(const Plan& p, const ProcessCore& core);

}  // namespace envrun::ckpt

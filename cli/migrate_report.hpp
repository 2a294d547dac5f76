// The report of `envrun migrate` (text or one JSON object), from ha::MigrateReport.
#pragma once
#include <string>

#include "ha/migrate_source.hpp"

namespace envrun::cli {

struct MigrateReportHeader {
  std::string id, to;
  uint64_t max_downtime_us = 0;
};

void print_migrate_report(const MigrateReportHeader& h, const ha::MigrateReport& r, bool json);

}  // namespace envrun::cli

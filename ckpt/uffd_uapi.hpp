// Kernel UAPI that Debian 12's headers (linux-libc-dev 6.1) predate: PAGEMAP_SCAN
// (Linux 6.7, include/uapi/linux/fs.h) and the userfaultfd write-protect-async features
// (Linux 6.7/6.8, include/uapi/linux/userfaultfd.h). Declared here from the documented
// UAPI (ioctl_pagemap_scan(2), ioctl_userfaultfd(2), Documentation/admin-guide/mm/
// userfaultfd.rst), under our own names so that newer system headers do not clash.
#pragma once
#include <linux/ioctl.h>

#include <cstdint>

namespace envrun::ckpt::uapi {

// --- PAGEMAP_SCAN on /proc/PID/pagemap -------------------------------------------------
// Page categories (struct page_region::categories and the pm_scan_arg masks).
inline constexpr uint64_t kPageIsWpAllowed = 1u << 0;  // async write-protect enabled
inline constexpr uint64_t kPageIsWritten = 1u << 1;    // written since write-protected
inline constexpr uint64_t kPageIsFile = 1u << 2;
inline constexpr uint64_t kPageIsPresent = 1u << 3;
inline constexpr uint64_t kPageIsSwapped = 1u << 4;    // also a uffd-wp pte marker
inline constexpr uint64_t kPageIsPfnZero = 1u << 5;
inline constexpr uint64_t kPageIsHuge = 1u << 6;

// pm_scan_arg::flags
inline constexpr uint64_t kScanWpMatching = 1u << 0;   // write-protect the pages reported
inline constexpr uint64_t kScanCheckWpAsync = 1u << 1; // EPERM on a VMA without async WP

struct PageRegion {  // struct page_region
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

struct PmScanArg {  // struct pm_scan_arg
  uint64_t size;  // sizeof(PmScanArg)
  uint64_t flags;
  uint64_t start, end;  // the range to walk
  uint64_t walk_end;    // out: where the walk stopped (end, or earlier when vec filled up)
  uint64_t vec;         // PageRegion array
  uint64_t vec_len;
  uint64_t max_pages;   // 0: no limit
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
static_assert(sizeof(PmScanArg) == 96);

inline constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);

// --- userfaultfd -------------------------------------------------------------------------
inline constexpr uint64_t kUffdApi = 0xAA;
inline constexpr int kUffdUserModeOnly = 1;  // userfaultfd(2) flag: only user-mode faults

inline constexpr uint64_t kFeatureWpUnpopulated = 1u << 13;  // protect pte_none pages too
inline constexpr uint64_t kFeatureWpAsync = 1u << 15;        // resolve WP faults in the kernel

inline constexpr uint64_t kRegisterModeWp = 1u << 1;      // UFFDIO_REGISTER_MODE_WP
inline constexpr uint64_t kWriteProtectModeWp = 1u << 0;  // UFFDIO_WRITEPROTECT_MODE_WP

struct UffdioApi {
  uint64_t api;
  uint64_t features;
  uint64_t ioctls;
};
struct UffdioRange {
  uint64_t start;
  uint64_t len;
};
struct UffdioRegister {
  UffdioRange range;
  uint64_t mode;
  uint64_t ioctls;  // out
};
struct UffdioWriteProtect {
  UffdioRange range;
  uint64_t mode;
};

inline constexpr unsigned long kUffdioApi = _IOWR(0xAA, 0x3F, UffdioApi);
inline constexpr unsigned long kUffdioRegister = _IOWR(0xAA, 0x00, UffdioRegister);
inline constexpr unsigned long kUffdioUnregister = _IOR(0xAA, 0x01, UffdioRange);
inline constexpr unsigned long kUffdioWriteProtect = _IOWR(0xAA, 0x06, UffdioWriteProtect);

}  // namespace envrun::ckpt::uapi

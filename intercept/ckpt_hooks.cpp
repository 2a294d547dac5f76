// The checkpoint hook table (ckpt_hooks.hpp) and the stdio flush.
#include "intercept/ckpt_hooks.hpp"

#include <stdio.h>

#include "intercept/layer_fds.hpp"
#include "intercept/meter.hpp"

// glibc's list of open streams and its lock (exported since GLIBC_2.2.5; the FILE layout
// with _chain, _mode and the write pointers is the public <bits/types/struct_FILE.h>).
extern "C" {
extern FILE* _IO_list_all;
void _IO_list_lock(void);
void _IO_list_unlock(void);
}

namespace envrun::icpt::ckpt {

namespace {

void stdio_save() { (void)flush_stdio(); }

// The meter: the per-thread batches go to the control page before the dump (a killed
// process would lose them; the collector samples the page); a restored process is a
// process started in the new instance.
void meter_save() { meter::flush_process(); }
void meter_restore() { meter::process_restored(); }

// redirect: a cached layer root whose path now names another directory (the instance's
// directories were made anew) is dropped; the next call opens the path again.
void redirect_restore() { layer_roots_revalidate(); }

constexpr CkptHook kHooks[] = {
    {"stdio", stdio_save, nullptr, nullptr},
    {"meter", meter_save, nullptr, meter_restore},
    {"redirect", nullptr, nullptr, redirect_restore},
};
constexpr size_t kCount = sizeof kHooks / sizeof kHooks[0];

}  // namespace

const CkptHook* hooks(size_t* n) {
  *n = kCount;
  return kHooks;
}

void run_save_hooks() {
  for (const auto& h : kHooks)
    if (h.save) h.save();
}

void run_resume_hooks() {
  for (size_t i = kCount; i-- > 0;)
    if (kHooks[i].resume) kHooks[i].resume();
}

void run_restore_hooks() {
  for (size_t i = kCount; i-- > 0;)
    if (kHooks[i].restore) kHooks[i].restore();
}

int flush_stdio() {
  int skipped = 0;
  _IO_list_lock();
  for (FILE* f = _IO_list_all; f != nullptr; f = f->_chain) {
    bool wide = f->_mode > 0;  // wide streams keep their pending output elsewhere: flush them
    if (!wide && f->_IO_write_ptr <= f->_IO_write_base) continue;  // nothing pending
    if (ftrylockfile(f) != 0) {
      ++skipped;
      continue;
    }
    fflush_unlocked(f);
    funlockfile(f);
  }
  _IO_list_unlock();
  return skipped;
}

}  // namespace envrun::icpt::ckpt

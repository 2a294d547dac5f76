// The model <-> JSON (the image's process-core and files sections).
#include "ckpt/model.hpp"

namespace envrun::ckpt {

using nlohmann::json;

namespace {

std::string hex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) s += d[c >> 4], s += d[c & 15];
  return s;
}

std::vector<uint8_t> unhex(const std::string& s) {
  auto v = [](char c) -> int { return c <= '9' ? c - '0' : c - 'a' + 10; };
  if (s.size() % 2) throw json::other_error::create(501, "odd hex length", nullptr);
  std::vector<uint8_t> b(s.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(v(s[2 * i]) << 4 | v(s[2 * i + 1]));
  return b;
}

json sigs(const std::vector<std::vector<uint8_t>>& v) {
  json a = json::array();
  for (const auto& s : v) a.push_back(hex(s));
  return a;
}

std::vector<std::vector<uint8_t>> sigs_from(const json& a) {
  std::vector<std::vector<uint8_t>> v;
  for (const auto& s : a) v.push_back(unhex(s.get<std::string>()));
  return v;
}

json vma_json(const Vma& m) {
  return {{"start", m.start}, {"end", m.end},   {"prot", m.prot}, {"shared", m.shared},
          {"growsdown", m.grows_down}, {"kind", int(m.kind)}, {"offset", m.offset},
          {"path", m.path}, {"ino", m.ino}, {"dev", m.dev}, {"name", m.name}};
}

Vma vma_from(const json& j) {
  Vma m;
  m.start = j.at("start");
  m.end = j.at("end");
  m.prot = j.at("prot");
  m.shared = j.at("shared");
  m.grows_down = j.at("growsdown");
  m.kind = Vma::Kind(j.at("kind").get<int>());
  m.offset = j.at("offset");
  m.path = j.at("path");
  m.ino = j.at("ino");
  m.dev = j.at("dev");
  m.name = j.at("name");
  return m;
}

json thread_json(const ThreadCore& t) {
  return {{"tid", t.tid},         {"sigmask", t.sigmask},   {"altstack_sp", t.altstack_sp},
          {"altstack_size", t.altstack_size}, {"altstack_flags", t.altstack_flags},
          {"clear_tid", t.clear_tid}, {"robust_list", t.robust_list}, {"robust_len", t.robust_len},
          {"rseq", t.rseq}, {"rseq_len", t.rseq_len}, {"rseq_sig", t.rseq_sig}, {"pending", sigs(t.pending)},
          {"seccomp", t.seccomp}};
}

ThreadCore thread_from(const json& j) {
  ThreadCore t;
  t.tid = j.at("tid");
  t.sigmask = j.at("sigmask");
  t.altstack_sp = j.at("altstack_sp");
  t.altstack_size = j.at("altstack_size");
  t.altstack_flags = j.at("altstack_flags");
  t.clear_tid = j.at("clear_tid");
  t.robust_list = j.at("robust_list");
  t.robust_len = j.at("robust_len");
  t.rseq = j.at("rseq");
  t.rseq_len = j.at("rseq_len");
  t.rseq_sig = j.at("rseq_sig");
  t.pending = sigs_from(j.at("pending"));
  if (j.contains("seccomp")) t.seccomp = j.at("seccomp").get<std::vector<std::vector<uint64_t>>>();
  return t;
}

}  // namespace

json to_json(const ProcessCore& p) {
  json j = {{"pid", p.pid}, {"ppid", p.ppid}, {"pgid", p.pgid}, {"sid", p.sid}, {"zombie", p.zombie},
            {"exit_code", p.exit_code}, {"comm", p.comm}, {"exe", p.exe}, {"cwd", p.cwd},
            {"cwd_deleted", p.cwd_deleted}, {"root", p.root}, {"umask", p.umask}, {"uids", p.uids},
            {"gids", p.gids}, {"groups", p.groups}, {"shared_pending", sigs(p.shared_pending)},
            {"caps", {p.cap_inh, p.cap_prm, p.cap_eff, p.cap_bnd, p.cap_amb}}, {"no_new_privs", p.no_new_privs},
            {"seccomp_mode", p.seccomp_mode}};
  json rl = json::array();
  for (const auto& [r, v] : p.rlimits) rl.push_back({r, v.first, v.second});
  j["rlimits"] = rl;
  json sa = json::array();
  for (const auto& [s, a] : p.sigactions) sa.push_back({s, a.handler, a.flags, a.restorer, a.mask});
  j["sigactions"] = sa;
  j["mm"] = {p.start_code, p.end_code, p.start_data, p.end_data, p.start_brk, p.brk,
             p.start_stack, p.arg_start, p.arg_end, p.env_start, p.env_end};
  j["auxv"] = p.auxv;
  json it = json::array();
  for (const auto& t : p.itimers) it.push_back({t.interval_sec, t.interval_usec, t.value_sec, t.value_usec});
  j["itimers"] = it;
  json pt = json::array();
  for (const auto& t : p.timers)
    pt.push_back({t.id, t.clock, t.signo, t.notify, t.tid, t.sigval, t.interval_sec, t.interval_nsec, t.value_sec, t.value_nsec});
  j["timers"] = pt;
  json vm = json::array();
  for (const auto& m : p.vmas) vm.push_back(vma_json(m));
  j["vmas"] = vm;
  json fds = json::array();
  for (const auto& f : p.fds) fds.push_back({f.fd, f.file, f.cloexec});
  j["fds"] = fds;
  json th = json::array();
  for (const auto& t : p.threads) th.push_back(thread_json(t));
  j["threads"] = th;
  return j;
}

ProcessCore process_from_json(const json& j) {
  ProcessCore p;
  p.pid = j.at("pid");
  p.ppid = j.at("ppid");
  p.pgid = j.at("pgid");
  p.sid = j.at("sid");
  p.zombie = j.at("zombie");
  p.exit_code = j.at("exit_code");
  p.comm = j.at("comm");
  p.exe = j.at("exe");
  p.cwd = j.at("cwd");
  p.cwd_deleted = j.at("cwd_deleted");
  p.root = j.at("root");
  p.umask = j.at("umask");
  p.uids = j.at("uids").get<std::vector<uint32_t>>();
  p.gids = j.at("gids").get<std::vector<uint32_t>>();
  p.groups = j.at("groups").get<std::vector<uint32_t>>();
  p.shared_pending = sigs_from(j.at("shared_pending"));
  const auto& caps = j.at("caps");
  p.cap_inh = caps.at(0), p.cap_prm = caps.at(1), p.cap_eff = caps.at(2), p.cap_bnd = caps.at(3), p.cap_amb = caps.at(4);
  p.no_new_privs = j.at("no_new_privs");
  p.seccomp_mode = j.value("seccomp_mode", 0);
  for (const auto& r : j.at("rlimits")) p.rlimits[r.at(0)] = {r.at(1), r.at(2)};
  for (const auto& s : j.at("sigactions")) p.sigactions[s.at(0)] = SigAction{s.at(1), s.at(2), s.at(3), s.at(4)};
  const auto& mm = j.at("mm");
  uint64_t* f[] = {&p.start_code, &p.end_code, &p.start_data, &p.end_data, &p.start_brk, &p.brk,
                   &p.start_stack, &p.arg_start, &p.arg_end, &p.env_start, &p.env_end};
  for (size_t i = 0; i < std::size(f); ++i) *f[i] = mm.at(i);
  p.auxv = j.at("auxv").get<std::vector<uint64_t>>();
  for (const auto& t : j.at("itimers")) p.itimers.push_back(ITimer{t.at(0), t.at(1), t.at(2), t.at(3)});
  for (const auto& t : j.at("timers"))
    p.timers.push_back(PosixTimer{t.at(0), t.at(1), t.at(2), t.at(3), t.at(4), t.at(5), t.at(6), t.at(7), t.at(8), t.at(9)});
  for (const auto& m : j.at("vmas")) p.vmas.push_back(vma_from(m));
  for (const auto& f : j.at("fds")) p.fds.push_back(FdEntry{f.at(0), f.at(1), f.at(2)});
  for (const auto& t : j.at("threads")) p.threads.push_back(thread_from(t));
  return p;
}

json to_json(const OpenFile& f) {
  json j = {{"id", f.id},   {"kind", int(f.kind)}, {"path", f.path},       {"flags", f.flags},
          {"pos", f.pos}, {"pipe_ino", f.pipe_ino}, {"data_id", f.data_id}, {"data_size", f.data_size},
          {"mode", f.mode}, {"what", f.what}, {"host_path", f.host_path}};
  if (f.kind == OpenFile::Kind::Socket) {
    const auto& s = f.sock;
    j["sock"] = {{"family", s.family}, {"type", s.type}, {"protocol", s.protocol}, {"listening", s.listening},
                 {"backlog", s.backlog}, {"addr", s.addr}, {"port", s.port}, {"peer_addr", s.peer_addr},
                 {"peer_port", s.peer_port}, {"opts", s.opts}, {"ino", s.ino}, {"peer_ino", s.peer_ino},
                 {"in_data_id", s.in_data_id}};
    if (s.established) {
      const auto& t = s.tcp;
      j["sock"]["tcp"] = {t.snd_seq, t.rcv_seq, t.outq_len, t.unsent_len, t.inq_len, t.send_data_id, t.mss, t.snd_wscale,
                          t.rcv_wscale, t.options, t.timestamp, t.snd_wl1, t.snd_wnd, t.max_window, t.rcv_wnd, t.rcv_wup};
    }
  }
  if (f.kind == OpenFile::Kind::Epoll) {
    j["owner"] = f.owner;
    j["epoll"] = json::array();
    for (const auto& t : f.epoll) j["epoll"].push_back({t.fd, t.events, t.data});
  }
  if (f.kind == OpenFile::Kind::EventFd) j["eventfd"] = {{"count", f.count}, {"semaphore", f.semaphore}};
  if (f.kind == OpenFile::Kind::TimerFd) {
    const auto& t = f.timer;
    j["timerfd"] = {t.clockid, t.settime_flags, t.ticks, t.value_sec, t.value_nsec, t.interval_sec, t.interval_nsec};
  }
  if (f.kind == OpenFile::Kind::SignalFd) j["sigmask"] = f.sigmask;
  return j;
}

OpenFile file_from_json(const json& j) {
  OpenFile f;
  f.id = j.at("id");
  f.kind = OpenFile::Kind(j.at("kind").get<int>());
  f.path = j.at("path");
  f.flags = j.at("flags");
  f.pos = j.at("pos");
  f.pipe_ino = j.at("pipe_ino");
  f.data_id = j.at("data_id");
  f.data_size = j.at("data_size");
  f.mode = j.at("mode");
  f.what = j.at("what");
  f.host_path = j.value("host_path", true);
  if (j.contains("sock")) {
    const auto& k = j.at("sock");
    auto& s = f.sock;
    s.family = k.at("family"), s.type = k.at("type"), s.protocol = k.at("protocol");
    s.listening = k.at("listening"), s.backlog = k.at("backlog");
    s.addr = k.at("addr"), s.port = k.at("port"), s.peer_addr = k.at("peer_addr"), s.peer_port = k.at("peer_port");
    s.opts = k.at("opts").get<std::map<std::string, int>>();
    s.ino = k.at("ino"), s.peer_ino = k.at("peer_ino"), s.in_data_id = k.at("in_data_id");
    if (k.contains("tcp")) {
      const auto& a = k.at("tcp");
      auto& t = s.tcp;
      s.established = true;
      t.snd_seq = a.at(0), t.rcv_seq = a.at(1), t.outq_len = a.at(2), t.unsent_len = a.at(3), t.inq_len = a.at(4);
      t.send_data_id = a.at(5), t.mss = a.at(6), t.snd_wscale = a.at(7), t.rcv_wscale = a.at(8), t.options = a.at(9);
      t.timestamp = a.at(10), t.snd_wl1 = a.at(11), t.snd_wnd = a.at(12), t.max_window = a.at(13), t.rcv_wnd = a.at(14);
      t.rcv_wup = a.at(15);
    }
  }
  if (j.contains("epoll")) {
    f.owner = j.at("owner");
    for (const auto& t : j.at("epoll")) f.epoll.push_back(EpollTarget{t.at(0), t.at(1), t.at(2)});
  }
  if (j.contains("eventfd")) f.count = j.at("eventfd").at("count"), f.semaphore = j.at("eventfd").at("semaphore");
  if (j.contains("timerfd")) {
    const auto& a = j.at("timerfd");
    auto& t = f.timer;
    t.clockid = a.at(0), t.settime_flags = a.at(1), t.ticks = a.at(2), t.value_sec = a.at(3), t.value_nsec = a.at(4);
    t.interval_sec = a.at(5), t.interval_nsec = a.at(6);
  }
  f.sigmask = j.value("sigmask", uint64_t(0));
  if (int(f.kind) < 0 || f.kind > OpenFile::Kind::SignalFd) throw std::out_of_range("file " + std::to_string(f.id) + ": unknown kind");
  return f;
}

}  // namespace envrun::ckpt

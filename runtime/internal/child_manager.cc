#include "runtime/internal/child_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

extern char** environ;

namespace keel::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// How long a stopped child's group has between SIGTERM and SIGKILL.
constexpr auto kGrace = std::chrono::seconds(2);
// How often the loop looks at its children's cancellation tokens and
// deadlines while any runs.
constexpr int kCheckMs = 20;

// Field 22 of /proc/PID/stat (its start time since boot), "" when gone:
// with the boot id, what tells a recorded child from a later process that
// got its pid.
std::string StartTime(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(f, text);
  auto paren = text.rfind(')');
  if (paren == std::string::npos) return "";
  std::istringstream rest(text.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return "";
  }
  return field;
}

std::string BootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

// Kills the groups of the children recorded in `dir` by an earlier node of
// this boot whose leader is gone or still the recorded process, and removes
// the records. Linux keeps a pid number from reuse while a group of that id
// has members, so a group whose leader is gone is still the recorded one.
void KillLeftovers(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  const std::string boot = BootId();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    in.close();
    Json record = Json::parse(text.str(), nullptr, false);
    std::filesystem::remove(entry.path(), ec);
    if (!record.is_object() || record.value("boot", "") != boot) continue;
    pid_t pgid = record.value("pgid", 0);
    if (pgid <= 1) continue;
    std::string start = StartTime(pgid);
    if (!start.empty() && start != record.value("start", "")) continue;  // its pid was reused
    if (kill(-pgid, SIGKILL) == 0) {
      spdlog::warn("killed process group {} of {}, left running by an earlier node", pgid,
                   record.value("owner", "?"));
    }
  }
}

// Lets a node run thousands of children: each holds four descriptors.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void WriteAll(int fd, const char* text) { (void)!write(fd, text, strlen(text)); }

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

class ChildManager::Impl {
 public:
  struct Request {
    ExecCommand command;
    CancellationToken cancel;
    std::string owner;
    std::function<void(ActivityResult)> done;
  };

  explicit Impl(std::string dir) : dir_(std::move(dir)) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    Watch(wake_, EPOLLIN);
    thread_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
    close(wake_);
    close(epoll_);
  }

  bool ok() const { return epoll_ >= 0 && wake_ >= 0; }

  void Submit(Request request) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(request));
    }
    Wake();
  }

 private:
  struct Child {
    Request request;
    pid_t pid = -1;  // also its process group
    int pidfd = -1, in = -1, out = -1, err = -1;
    size_t written = 0;  // of stdin_text
    std::string out_text, err_text;
    std::optional<Clock::time_point> deadline;  // of the command's timeout
    std::string stopped;                        // why it is being stopped; "" = it is not
    Clock::time_point kill_at;                  // SIGKILL to the group, once stopped
    bool killed = false, exited = false;
    int status = 0;
    std::string record;
  };

  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
  }

  void Watch(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  // Stops watching and closes one of a child's descriptors.
  void Drop(int& fd) {
    if (fd < 0) return;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    fds_.erase(fd);
    CloseFd(fd);
  }

  void Loop() {
    // A write to a child's closed stdin fails with EPIPE instead of killing
    // the node; the pending SIGPIPE is consumed below.
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    epoll_event events[256];
    auto next_scan = Clock::now();
    for (;;) {
      int n = epoll_wait(epoll_, events, 256, children_.empty() ? -1 : kCheckMs);
      std::vector<pid_t> ready;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_) {
          uint64_t count;
          (void)!read(wake_, &count, sizeof count);
          continue;
        }
        auto it = fds_.find(fd);
        if (it == fds_.end()) continue;
        ready.push_back(it->second);
        OnReady(*children_.at(it->second), fd);
      }
      bool stopping;
      std::deque<Request> requests;
      {
        std::lock_guard lock(mu_);
        stopping = stopping_;
        requests.swap(queue_);
      }
      for (auto& request : requests) {
        if (stopping) request.cancel.Cancel();
        Start(std::move(request));
      }
      auto now = Clock::now();
      if (stopping || now >= next_scan) {
        // Every child: cancels, timeouts, kills after the grace.
        next_scan = now + std::chrono::milliseconds(kCheckMs);
        for (auto it = children_.begin(); it != children_.end();)
          it = Settle(*it->second, now, stopping) ? children_.erase(it) : std::next(it);
      } else {
        // Only those that had news: each event costs O(1), not O(children).
        for (pid_t pid : ready) {
          auto it = children_.find(pid);
          if (it != children_.end() && Finish(*it->second)) children_.erase(it);
        }
      }
      if (stopping && children_.empty()) return;
    }
  }

  // Forks and watches one child, unless its attempt was cancelled on the way
  // here. The child waits for a byte on `go` until its record is written.
  void Start(Request request) {
    const std::string& program = request.command.argv[0];
    if (request.cancel.cancelled()) {
      request.done(ActivityResult::Fail("exec: " + program + ": cancelled", false));
      return;
    }
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, go[2] = {-1, -1};
    auto close_all = [&] {
      for (int* p : {pin, pout, perr, go}) {
        CloseFd(p[0]);
        CloseFd(p[1]);
      }
    };
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) ||
        pipe2(go, O_CLOEXEC)) {
      std::string error = std::string("exec: pipe: ") + strerror(errno);
      close_all();
      request.done(ActivityResult::Fail(error, true));
      return;
    }
    // All the child needs is built before the fork: between fork and exec
    // it makes async-signal-safe calls only.
    const ExecCommand& c = request.command;
    std::vector<char*> argv;
    for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e) {
      std::string_view entry(*e);
      bool replaced = false;
      for (const auto& set : c.env) {
        auto eq = set.find('=');
        if (entry.substr(0, entry.find('=') + 1) == std::string_view(set).substr(0, eq + 1))
          replaced = true;
      }
      if (!replaced) envp.push_back(*e);
    }
    for (const auto& set : c.env) envp.push_back(const_cast<char*>(set.c_str()));
    envp.push_back(nullptr);
    const char* cwd = c.cwd.empty() ? nullptr : c.cwd.c_str();
    const pid_t parent = getpid();

    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);                     // its own group, so that a stop reaches its children too
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with this thread, which lives with the node
      if (getppid() != parent) _exit(127);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(sig, SIG_DFL);
      dup2(pin[0], 0);
      dup2(pout[1], 1);
      dup2(perr[1], 2);
      char byte;
      ssize_t got;
      while ((got = read(go[0], &byte, 1)) < 0 && errno == EINTR) {
      }
      if (got != 1) _exit(127);  // the node did not record it: it must not run
      syscall(SYS_close_range, 3, ~0U, 0);
      if (cwd && chdir(cwd) != 0) {
        const char* why = strerrordesc_np(errno);
        WriteAll(2, "exec: cannot chdir to ");
        WriteAll(2, cwd);
        WriteAll(2, ": ");
        WriteAll(2, why ? why : "error");
        WriteAll(2, "\n");
        _exit(127);
      }
      execvpe(argv[0], argv.data(), envp.data());
      const char* why = strerrordesc_np(errno);
      WriteAll(2, "exec: ");
      WriteAll(2, argv[0]);
      WriteAll(2, ": ");
      WriteAll(2, why ? why : "error");
      WriteAll(2, "\n");
      _exit(127);
    }
    if (pid < 0) {
      std::string error = std::string("exec: fork: ") + strerror(errno);
      close_all();
      request.done(ActivityResult::Fail(error, true));
      return;
    }
    setpgid(pid, pid);  // here too: no stop can reach a group not made yet
    CloseFd(pin[0]);
    CloseFd(pout[1]);
    CloseFd(perr[1]);
    CloseFd(go[0]);
    auto child = std::make_unique<Child>();
    Child& ch = *child;
    ch.pid = pid;
    ch.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // -1: reaped by polling
    ch.record = dir_ + "/" + std::to_string(pid);
    {
      Json record = {{"pgid", pid},
                     {"start", StartTime(pid)},
                     {"boot", BootId()},
                     {"owner", request.owner},
                     {"argv", c.argv}};
      std::ofstream out(ch.record, std::ios::trunc);
      out << record.dump() << "\n";
      if (!out) spdlog::warn("exec: cannot record child {} in {}", pid, dir_);
    }
    (void)!write(go[1], "x", 1);
    CloseFd(go[1]);
    ch.in = pin[1];
    ch.out = pout[0];
    ch.err = perr[0];
    for (int fd : {ch.in, ch.out, ch.err}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (c.timeout_ms > 0) ch.deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);
    ch.request = std::move(request);
    for (int fd : {ch.pidfd, ch.out, ch.err}) {
      if (fd < 0) continue;
      fds_[fd] = pid;
      Watch(fd, EPOLLIN);
    }
    if (ch.request.command.stdin_text.empty()) {
      CloseFd(ch.in);
    } else {
      fds_[ch.in] = pid;
      Watch(ch.in, EPOLLOUT);
    }
    children_[pid] = std::move(child);
  }

  void OnReady(Child& ch, int fd) {
    if (fd == ch.pidfd) {
      Reap(ch);
    } else if (fd == ch.in) {
      const std::string& text = ch.request.command.stdin_text;
      ssize_t w = write(ch.in, text.data() + ch.written, text.size() - ch.written);
      if (w > 0) ch.written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || ch.written == text.size()) {
        Drop(ch.in);
        if (w < 0 && errno == EPIPE) ConsumeSigpipe();
      }
    } else {
      char buf[65536];
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          (fd == ch.out ? ch.out_text : ch.err_text).append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        Drop(fd == ch.out ? ch.out : ch.err);  // end of output (or an error)
        break;
      }
    }
  }

  static void ConsumeSigpipe() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    timespec zero{};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }

  // Reaps the child if it has exited. A stopped child's stragglers are
  // killed first, while its group id cannot be reused.
  void Reap(Child& ch) {
    siginfo_t info{};
    if (waitid(P_PID, ch.pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != ch.pid)
      return;
    if (!ch.stopped.empty()) kill(-ch.pid, SIGKILL);
    int status = 0;
    if (waitpid(ch.pid, &status, WNOHANG) != ch.pid) return;
    ch.exited = true;
    ch.status = status;
    Drop(ch.pidfd);
  }

  void Stop(Child& ch, std::string why) {
    ch.stopped = std::move(why);
    if (ch.exited) {
      kill(-ch.pid, SIGKILL);  // what it left holding its output
      return;
    }
    kill(-ch.pid, SIGTERM);
    ch.kill_at = Clock::now() + kGrace;
  }

  // Stops the child if its attempt was cancelled or its timeout passed,
  // kills its group once the grace is over; true when it is done and answered.
  bool Settle(Child& ch, Clock::time_point now, bool stopping) {
    if (ch.stopped.empty()) {
      if (stopping || ch.request.cancel.cancelled()) {
        Stop(ch, "cancelled");
      } else if (ch.deadline && now >= *ch.deadline) {
        Stop(ch, "timed out after " + std::to_string(ch.request.command.timeout_ms) + "ms");
      }
    } else if (!ch.exited && !ch.killed && now >= ch.kill_at) {
      kill(-ch.pid, SIGKILL);
      ch.killed = true;
    }
    if (!ch.exited && ch.pidfd < 0) Reap(ch);
    return Finish(ch);
  }

  // Answers a child that has exited and whose output is read (or that was
  // stopped): true when it did.
  bool Finish(Child& ch) {
    bool done = ch.exited && ((ch.out < 0 && ch.err < 0) || !ch.stopped.empty());
    if (!done) return false;
    Drop(ch.in);
    Drop(ch.out);
    Drop(ch.err);
    std::error_code ec;
    std::filesystem::remove(ch.record, ec);
    const ExecCommand& c = ch.request.command;
    ActivityResult result =
        ch.stopped.empty()
            ? ExecExited(c, ch.status, std::move(ch.out_text), std::move(ch.err_text))
            : ActivityResult::Fail("exec: " + c.argv[0] + ": " + ch.stopped,
                                   ch.stopped != "cancelled");
    ch.request.done(std::move(result));
    return true;
  }

  const std::string dir_;
  int epoll_ = -1, wake_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::deque<Request> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  // The loop thread's own: children by pid, and their watched descriptors.
  std::unordered_map<pid_t, std::unique_ptr<Child>> children_;
  std::unordered_map<int, pid_t> fds_;
};

Result<std::unique_ptr<ChildManager>> ChildManager::Open(const std::string& records_dir) {
  KillLeftovers(records_dir);
  RaiseDescriptorLimit();
  auto impl = std::make_unique<Impl>(records_dir);
  if (!impl->ok()) return Status::IOError(std::string("exec: epoll: ") + strerror(errno));
  return std::unique_ptr<ChildManager>(new ChildManager(std::move(impl)));
}

ChildManager::ChildManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChildManager::~ChildManager() = default;

void ChildManager::Run(ExecCommand command, CancellationToken cancel, std::string owner,
                       std::function<void(ActivityResult)> done) {
  impl_->Submit({std::move(command), std::move(cancel), std::move(owner), std::move(done)});
}

}  // namespace keel::runtime

// Failure injection (issue 16): kill -9 during training (also in the middle of checkpoint
// writes) and resume, full disks (a file-size limit, RLIMIT_FSIZE) for train, convert, predict and
// eval, and a read-only run folder. Everything runs the built `hourglass` as a user would.

#include "hg/io/checkpoint.h"
#include "hg/model/hourglass.h"
#include "hg/train/config.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace fs = std::filesystem;
using hg::test::run_tool;
using hg::test::scratch_dir;

namespace {

constexpr int64_t kInterval = 2;  // checkpoint_every_steps of the runs that are killed

// test_train's tiny model: 8 steps per epoch, a second or two per run.
hg::train::TrainConfig tiny_run(int64_t epochs) {
  auto c = hg::test::tiny_train_config();
  c.epochs = epochs;
  c.checkpoint_every_steps = kInterval;
  return c;
}

std::string write_config(const fs::path& dir, const hg::train::TrainConfig& c) {
  const auto path = dir / "config.json";
  hg::test::write_text(path, c.to_json().dump());
  return path.string();
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The "step" values of log.jsonl in order; a line cut by a kill is skipped.
std::vector<int64_t> logged_steps(const fs::path& run) {
  std::vector<int64_t> steps;
  std::ifstream in(run / "log.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("type", "") == "step") steps.push_back(j["step"]);
  }
  return steps;
}

int64_t last_logged_step(const fs::path& run) {
  const auto steps = logged_steps(run);
  return steps.empty() ? 0 : *std::max_element(steps.begin(), steps.end());
}

// The step of run/last.hg (0 without one); throws if the file does not read as a checkpoint.
int64_t checkpoint_step(const fs::path& run) {
  const auto last = run / "last.hg";
  if (!fs::exists(last)) return 0;
  return hg::io::read_checkpoint(last.string()).meta["train"]["step"].get<int64_t>();
}

// Temporary files (atomic_file.h) in `dir` whose name starts with `stem`.
std::vector<std::string> temporaries(const fs::path& dir, const std::string& stem = "") {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind(stem, 0) == 0 && name.find(".tmp-") != std::string::npos) found.push_back(name);
  }
  return found;
}

// Starts `command` (a shell command line) in the background, its output into `output`.
pid_t spawn(const std::string& command, const fs::path& output) {
  const std::string line = "exec " + command;
  const std::string out = output.string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Runs the tool with `args` under a file-size limit of `max_bytes` (RLIMIT_FSIZE, SIGXFSZ
// ignored): any write past it fails with EFBIG, as on a disk that is full.
hg::test::ToolResult run_tool_on_full_disk(const std::string& args, rlim_t max_bytes) {
  const std::string line = std::string("exec ") + HG_BINARY + " " + args;
  int pipe_fd[2];
  EXPECT_EQ(::pipe(pipe_fd), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const rlimit limit{max_bytes, max_bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ::signal(SIGXFSZ, SIG_IGN);
    ::close(pipe_fd[0]);
    ::dup2(pipe_fd[1], 1);
    ::dup2(pipe_fd[1], 2);
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_fd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fd[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(pipe_fd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// Polls `ready` every 5 ms until it holds (true) or `pid` exits or 120 s pass (false).
bool wait_for(pid_t pid, const std::function<bool()>& ready) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// A native checkpoint of an untrained tiny model for MPII's 16 joints, 64 px input.
std::string tiny_model(const fs::path& dir) {
  torch::manual_seed(0);
  hg::model::StackedHourglass net(
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(2).stem1(16).stem2(16));
  const auto path = (dir / "tiny.hg").string();
  hg::io::save_model(path, *net, {{"input_size", 64}});
  return path;
}

// Runs the tool with `args` on a disk that is full.
using FullDiskRun = std::function<hg::test::ToolResult(const std::string& args)>;

constexpr rlim_t kFileLimit = 512;  // bytes, for run_tool_on_full_disk

// A small tmpfs mounted at `dir` while it lives, where this machine allows mounts (root with
// CAP_SYS_ADMIN; not in CI), for a disk that is really full: fill() takes all its space.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir);
    mounted_ =
        ::geteuid() == 0 &&
        hg::test::run_command("mount -t tmpfs -o size=16m hg-test " + dir.string()).code == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) hg::test::run_command("umount " + dir_.string());
  }
  bool mounted() const { return mounted_; }

  // Runs `args` with every page of the tmpfs taken by a filler file.
  hg::test::ToolResult run_full(const std::string& args) {
    const auto filler = (dir_ / "filler").string();
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const std::string chunk(1 << 16, 'x');
    for (size_t size = chunk.size(); size > 0; size /= 2)
      while (::write(fd, chunk.data(), size) == static_cast<ssize_t>(size)) {
      }
    ::close(fd);
    auto r = run_tool(args);
    fs::remove(filler);
    return r;
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
};

// Runs `args` once freely (it must write `output`), then again with `full`. The second run must
// fail naming the file (and the reason: the OS's, or HDF5's for .h5), leave `output`
// byte-identical and leave no temporary file.
void expect_output_survives_a_full_disk(const std::string& args, const fs::path& output,
                                        const FullDiskRun& full) {
  const auto first = run_tool(args);
  ASSERT_EQ(first.code, 0) << first.out;
  ASSERT_TRUE(fs::exists(output)) << output << "\n" << first.out;
  const auto before = read_text(output);
  ASSERT_GT(before.size(), kFileLimit) << output << " fits under the limit";
  const auto r = full(args);
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cannot write " + output.string() + ": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(the existing file was left as it was)"), std::string::npos) << r.out;
  EXPECT_EQ(read_text(output), before) << output << " changed";
  EXPECT_TRUE(temporaries(output.parent_path()).empty()) << "temporary files beside " << output;
}

// convert, predict -o, eval --save-preds and eval --json into `dir` with `full`, whose OS error is
// `reason`.
void expect_outputs_survive_a_full_disk(const fs::path& dir, const FullDiskRun& full,
                                        const std::string& reason) {
  const auto weights = tiny_model(dir);
  const auto image = hg::test::kData + "/mpii/images/052475643.jpg";
  expect_output_survives_a_full_disk("convert " + weights + " " + (dir / "converted.hg").string(),
                                     dir / "converted.hg", full);
  const std::string predict =
      "predict --threads 2 --no-flip --box 10,20,100,200 --weights " + weights + " " + image;
  expect_output_survives_a_full_disk(predict + " -o " + (dir / "out.json").string(),
                                     dir / "out.json", full);
  const std::string eval = "eval synthetic:16:7 --no-flip --weights " + weights;
  expect_output_survives_a_full_disk(eval + " --save-preds " + (dir / "preds.h5").string(),
                                     dir / "preds.h5", full);
  expect_output_survives_a_full_disk(eval + " --per-stack --json " + (dir / "eval.json").string(),
                                     dir / "eval.json", full);
  // A new output that cannot be written leaves no file at all (no 0-byte file).
  const auto fresh = full(predict + " -o " + (dir / "new.json").string());
  EXPECT_NE(fresh.code, 0);
  EXPECT_NE(fresh.out.find("cannot write " + (dir / "new.json").string() + ": " + reason +
                           " (no file was written)"),
            std::string::npos)
      << fresh.out;
  EXPECT_FALSE(fs::exists(dir / "new.json"));
}

}  // namespace

// kill -9 at 10 points of a 40-step run (every other one in the middle of a checkpoint write,
// held open by the test-only HG_TEST_WRITE_DELAY_MS), each time resumed: every resume works,
// loses at most one checkpoint interval, cleans up the interrupted write and truncates the log;
// the final weights are those of an uninterrupted run and every step is logged once.
TEST(FailureInjection, KillNineDuringTrainingAndCheckpointWritesLosesAtMostOneInterval) {
  const auto dir = scratch_dir();
  const auto c = tiny_run(5);
  const int64_t total = 5 * 8;
  const auto config = write_config(dir, c);
  const auto straight = dir / "straight", run = dir / "killed";
  const auto reference = run_tool("train --config " + config + " --run-dir " + straight.string());
  ASSERT_EQ(reference.code, 0) << reference.out;

  std::mt19937 rng(16);
  int in_write = 0;
  bool left_temporary = false;
  int64_t logged = 0, worst_loss = 0;
  for (int k = 0; k < 10; ++k) {
    const std::string args = k == 0 ? "train --config " + config + " --run-dir " + run.string()
                                    : "train --resume " + run.string();
    const auto output = dir / ("run" + std::to_string(k) + ".out");
    const pid_t pid =
        spawn(std::string("env HG_TEST_WRITE_DELAY_MS=150 ") + HG_BINARY + " " + args, output);
    const bool during_write = k % 2 == 1;
    const int64_t target = logged + 1 + static_cast<int64_t>(rng() % 2);
    const bool ready = wait_for(pid, [&] {
      return last_logged_step(run) >= target &&
             (!during_write || !temporaries(run, "last").empty());
    });
    ASSERT_TRUE(ready) << "run " << k << " ended or hung before step " << target << ":\n"
                       << read_text(output);
    if (!during_write) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ::waitpid(pid, nullptr, 0);
    if (left_temporary)  // the kill before interrupted a write: this start cleaned it up
      EXPECT_NE(read_text(output).find("(an interrupted write)"), std::string::npos)
          << read_text(output);
    left_temporary = !temporaries(run, "last").empty();
    in_write += left_temporary;
    logged = last_logged_step(run);
    int64_t saved = 0;
    ASSERT_NO_THROW(saved = checkpoint_step(run)) << "kill " << k << " broke last.hg";
    EXPECT_LE(logged - saved, kInterval) << "kill " << k;
    worst_loss = std::max(worst_loss, logged - saved);
  }
  EXPECT_GT(in_write, 0) << "no kill landed in a checkpoint write";
  std::printf(
      "[ kills ] 10 kills (%d during a checkpoint write), 10 resumes, at most %ld steps "
      "lost (interval %ld)\n",
      in_write, static_cast<long>(worst_loss), static_cast<long>(kInterval));

  const auto finished = run_tool("train --resume " + run.string());
  ASSERT_EQ(finished.code, 0) << finished.out;
  EXPECT_NE(finished.out.find("finished after 5 epochs, 40 steps"), std::string::npos)
      << finished.out;
  EXPECT_TRUE(temporaries(run).empty());
  // Every step logged exactly once, in order, as in the uninterrupted run.
  std::vector<int64_t> expected(total);
  for (int64_t s = 0; s < total; ++s) expected[s] = s + 1;
  EXPECT_EQ(logged_steps(run), expected);
  EXPECT_EQ(logged_steps(straight), expected);
  // The same batches in the same order: the same weights as the uninterrupted run.
  const auto a = hg::io::read_checkpoint((straight / "last.hg").string());
  const auto b = hg::io::read_checkpoint((run / "last.hg").string());
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, t] : a.state) {
    ASSERT_TRUE(b.state.count(name)) << name;
    EXPECT_TRUE(
        torch::allclose(t.to(torch::kDouble), b.state.at(name).to(torch::kDouble), 1e-5, 1e-6))
        << name;
  }
}

// A run killed before its first checkpoint resumes from its config.json at step 0; a folder
// that never held a run says so.
TEST(FailureInjection, ResumeBeforeTheFirstCheckpointStartsTheRunAgain) {
  const auto dir = scratch_dir();
  auto c = tiny_run(1);
  c.checkpoint_every_steps = 0;  // the first checkpoint is the epoch's end (step 8)
  const auto config = write_config(dir, c);
  const auto run = dir / "run";
  const auto output = dir / "run.out";
  const pid_t pid = spawn(
      std::string(HG_BINARY) + " train --config " + config + " --run-dir " + run.string(), output);
  ASSERT_TRUE(wait_for(pid, [&] { return last_logged_step(run) >= 2; })) << read_text(output);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ::waitpid(pid, nullptr, 0);
  ASSERT_FALSE(fs::exists(run / "last.hg"));

  const auto resumed = run_tool("train --resume " + run.string());
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("no checkpoint in " + run.string() +
                             " yet (the run stopped before its first one): starting it again"),
            std::string::npos)
      << resumed.out;
  EXPECT_EQ(logged_steps(run), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  fs::create_directories(dir / "empty");
  const auto empty = run_tool("train --resume " + (dir / "empty").string());
  EXPECT_NE(empty.code, 0);
  EXPECT_NE(empty.out.find((dir / "empty").string() + " holds neither last.hg nor config.json"),
            std::string::npos)
      << empty.out;
  const auto missing = run_tool("train --resume " + (dir / "missing").string());
  EXPECT_NE(missing.out.find((dir / "missing").string() + " does not exist"), std::string::npos)
      << missing.out;
}

// Training on a full disk: the failed checkpoint write stops the run naming last.hg, which keeps
// the previous checkpoint byte for byte.
TEST(FailureInjection, TrainingOnAFullDiskKeepsTheLastCheckpoint) {
  const auto dir = scratch_dir();
  auto c = tiny_run(1);
  c.checkpoint_every_steps = 0;
  const auto run = dir / "run";
  const auto first =
      run_tool("train --config " + write_config(dir, c) + " --run-dir " + run.string());
  ASSERT_EQ(first.code, 0) << first.out;
  const auto last = run / "last.hg";
  const auto before = read_text(last);
  ASSERT_GT(before.size(), 64u << 10);
  const auto full =
      run_tool_on_full_disk("train --resume " + run.string() + " --set epochs=2", 64 << 10);
  EXPECT_NE(full.code, 0) << full.out;
  EXPECT_NE(full.out.find("cannot write " + last.string() +
                          ": File too large (the existing file was left as it was)"),
            std::string::npos)
      << full.out;
  EXPECT_EQ(read_text(last), before);
  EXPECT_TRUE(temporaries(run).empty());
  // With room again, the run continues from the checkpoint that survived.
  const auto resumed = run_tool("train --resume " + run.string() + " --set epochs=2");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(checkpoint_step(run), 16);
}

// Everywhere: a file-size limit (EFBIG). Where mounts work: also a tmpfs that is full (ENOSPC).
TEST(FailureInjection, ConvertPredictAndEvalOnAFullDiskLeaveTheOldOutputs) {
  const auto dir = scratch_dir();
  expect_outputs_survive_a_full_disk(
      dir, [](const std::string& args) { return run_tool_on_full_disk(args, kFileLimit); },
      "File too large");
  SmallTmpfs disk(dir / "tmpfs");
  if (!disk.mounted()) return;
  std::printf("[ tmpfs ] also on a full tmpfs\n");
  expect_outputs_survive_a_full_disk(
      dir / "tmpfs", [&](const std::string& args) { return disk.run_full(args); },
      "No space left on device");
}

// A run folder that cannot be written is reported before any training, naming it and the reason.
TEST(FailureInjection, ReadOnlyRunFolderIsAClearError) {
  const auto dir = scratch_dir();
  auto c = tiny_run(1);
  c.checkpoint_every_steps = 0;
  const auto run = dir / "run";
  ASSERT_EQ(run_tool("train --config " + write_config(dir, c) + " --run-dir " + run.string()).code,
            0);
  const auto before = read_text(run / "last.hg");
  // Root ignores permissions: a read-only bind mount of the folder then, where mounts work.
  bool mounted = false;
  if (::geteuid() == 0) {
    mounted = hg::test::run_command("mount --bind " + run.string() + " " + run.string() +
                                    " && mount -o remount,bind,ro " + run.string())
                  .code == 0;
    if (!mounted) GTEST_SKIP() << "running as root without mounts: cannot make a folder read-only";
  } else {
    fs::permissions(run, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
  }
  const auto r = run_tool("train --resume " + run.string() + " --set epochs=2");
  if (mounted) hg::test::run_command("umount " + run.string());
  fs::permissions(run, fs::perms::owner_write, fs::perm_options::add);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("run folder " + run.string() + " is not writable ("), std::string::npos)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(read_text(run / "last.hg"), before);
}

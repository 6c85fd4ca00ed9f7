// Known-pattern I/O on several files from several threads at once (keyslot pressure: with the
// default per-file fscrypt policy every file has its own key, so concurrent I/O on N files
// needs N keys in the controller's slots at the same time).
//
//   write_files: files [{path, size, seed}], threads (default: one per file), fsync (true)
//     -> files [{path, ino, size, nonce, extents, blksize}] (file_info facts, taken after every
//        thread finished), seconds
//   read_files:  files [{path, seed, size?}], threads, drop_caches (false)
//     -> files [{path, bytes}], bytes, verified, seconds
//
// Each thread takes the next file from a shared index and writes (or reads and verifies) it
// in 256 KiB chunks; with fsync every writer syncs its own file, so write-back of different
// files (different keys) overlaps. The first failure (errno, message) fails the op after
// every thread has joined.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <thread>

#include "ops.hpp"

namespace icemu::guest {
namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kMaxFiles = 1024;
constexpr unsigned kMaxThreads = 64;

struct Job {
    std::string path;
    std::uint64_t size = 0;
    std::uint64_t seed = 0;
    bool has_size = false;
    std::uint64_t done = 0; // bytes read (read_files)
};

std::vector<Job> parse_jobs(const json& req, bool need_size) {
    const json& files = req.at("files");
    if (!files.is_array() || files.empty() || files.size() > kMaxFiles) {
        throw OpError(EINVAL, "files must be a non-empty array of at most " +
                                  std::to_string(kMaxFiles) + " entries");
    }
    std::vector<Job> jobs;
    for (const auto& f : files) {
        Job j;
        j.path = arg_str(f, "path");
        j.seed = arg_u64(f, "seed", 0);
        j.has_size = f.contains("size");
        if (need_size || j.has_size) {
            j.size = arg_u64(f, "size");
        }
        jobs.push_back(j);
    }
    return jobs;
}

unsigned thread_count(const json& req, std::size_t jobs) {
    const std::uint64_t t = arg_u64(req, "threads", jobs);
    if (t == 0 || t > kMaxThreads) {
        throw OpError(EINVAL, "threads must be 1.." + std::to_string(kMaxThreads));
    }
    return static_cast<unsigned>(std::min<std::uint64_t>(t, jobs));
}

// Runs fn(job) for every job on `threads` threads; rethrows the first failure.
template <typename Fn>
void run_parallel(std::vector<Job>& jobs, unsigned threads, Fn fn) {
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::optional<OpError> first;
    auto worker = [&] {
        for (;;) {
            const std::size_t i = next.fetch_add(1);
            if (i >= jobs.size()) {
                return;
            }
            {
                std::lock_guard<std::mutex> g(mu);
                if (first) {
                    return;
                }
            }
            try {
                fn(jobs[i]);
            } catch (const OpError& e) {
                std::lock_guard<std::mutex> g(mu);
                if (!first) {
                    first = e;
                }
            } catch (const std::exception& e) {
                std::lock_guard<std::mutex> g(mu);
                if (!first) {
                    first = OpError(EIO, e.what());
                }
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back(worker);
    }
    for (auto& th : pool) {
        th.join();
    }
    if (first) {
        throw *first;
    }
}

void write_one(const Job& j, bool sync) {
    write_pattern_file(j.path, j.size, j.seed, kChunk, sync);
}

void read_one(Job& j) {
    j.done = verify_pattern_file(j.path, j.seed, j.has_size ? std::optional(j.size) : std::nullopt,
                                 kChunk);
}

} // namespace

json op_write_files(const json& req) {
    std::vector<Job> jobs = parse_jobs(req, true);
    const unsigned threads = thread_count(req, jobs.size());
    const bool sync = arg_bool(req, "fsync", true);
    const double t0 = uptime_s();
    run_parallel(jobs, threads, [&](Job& j) { write_one(j, sync); });
    const double secs = uptime_s() - t0;
    // The layout facts of every file, as file_info reports them (inode, nonce, extents), so
    // the checker can derive each file's key and map its blocks.
    json out = json::array();
    for (const auto& j : jobs) {
        json f = op_file_info({{"path", j.path}});
        f["path"] = j.path;
        out.push_back(std::move(f));
    }
    return {{"files", out}, {"threads", threads}, {"seconds", secs}};
}

json op_read_files(const json& req) {
    std::vector<Job> jobs = parse_jobs(req, false);
    const unsigned threads = thread_count(req, jobs.size());
    if (arg_bool(req, "drop_caches", false)) {
        drop_caches();
    }
    const double t0 = uptime_s();
    run_parallel(jobs, threads, [](Job& j) { read_one(j); });
    json out = json::array();
    std::uint64_t total = 0;
    for (const auto& j : jobs) {
        out.push_back({{"path", j.path}, {"bytes", j.done}});
        total += j.done;
    }
    return {{"files", out},
            {"threads", threads},
            {"bytes", total},
            {"verified", true},
            {"seconds", uptime_s() - t0}};
}

} // namespace icemu::guest

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
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "../common/pattern.hpp"
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
    auto slash = j.path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
        mkdir_p(j.path.substr(0, slash));
    }
    const int fd = ::open(j.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw_errno("open " + j.path);
    }
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[kChunk]);
    auto fail = [&](const std::string& what) {
        const int e = errno;
        ::close(fd);
        errno = e;
        throw_errno(what + " " + j.path);
    };
    for (std::uint64_t off = 0; off < j.size;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, j.size - off));
        pattern::fill(j.seed, off, buf.get(), n);
        const ssize_t w = ::pwrite(fd, buf.get(), n, static_cast<off_t>(off));
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("write");
        }
        off += static_cast<std::uint64_t>(w);
    }
    if (sync && ::fsync(fd) < 0) {
        fail("fsync");
    }
    ::close(fd);
}

void read_one(Job& j) {
    const int fd = ::open(j.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno("open " + j.path);
    }
    struct stat st {};
    ::fstat(fd, &st);
    const std::uint64_t size = j.has_size ? j.size : static_cast<std::uint64_t>(st.st_size);
    std::unique_ptr<std::uint8_t[]> got(new std::uint8_t[kChunk]);
    std::unique_ptr<std::uint8_t[]> want(new std::uint8_t[kChunk]);
    std::uint64_t off = 0;
    while (off < size) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - off));
        const ssize_t r = ::pread(fd, got.get(), n, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            const int e = errno;
            ::close(fd);
            errno = e;
            throw_errno("read " + j.path + " at " + std::to_string(off));
        }
        if (r == 0) {
            break;
        }
        const auto rn = static_cast<std::size_t>(r);
        pattern::fill(j.seed, off, want.get(), rn);
        if (std::memcmp(got.get(), want.get(), rn) != 0) {
            std::size_t i = 0;
            while (got[i] == want[i]) {
                ++i;
            }
            ::close(fd);
            throw OpError(EBADMSG, "content mismatch in " + j.path + " at offset " +
                                       std::to_string(off + i) + ": got 0x" + to_hex(&got[i], 1) +
                                       " want 0x" + to_hex(&want[i], 1));
        }
        off += rn;
    }
    ::close(fd);
    if (off != size) {
        throw OpError(EBADMSG, j.path + " is short: " + std::to_string(off) + " of " +
                                   std::to_string(size) + " bytes");
    }
    j.done = off;
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

// Known-pattern file I/O (common/icemu/pattern.hpp) and layout facts: inode number,
// the fscrypt nonce, and FIEMAP extents (the physical bytes a file occupies on its device).
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <memory>
#include <optional>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "icemu/pattern.hpp"
#include "ops.hpp"

namespace icemu::guest {
namespace {

constexpr std::size_t kChunk = 1 << 20;
const unsigned long FS_IOC_GET_NONCE = _IOR('f', 27, std::uint8_t[16]);

std::string dirname_of(const std::string& path) {
    auto s = path.rfind('/');
    return s == std::string::npos || s == 0 ? "/" : path.substr(0, s);
}

} // namespace

// Writes the pattern of `seed` over [0, size) of path (created or truncated, parent
// directories made) in `chunk`-sized pwrites; fsyncs when asked. Returns the file's stat.
struct stat write_pattern_file(const std::string& path, std::uint64_t size, std::uint64_t seed,
                               std::size_t chunk, bool fsync) {
    mkdir_p(dirname_of(path));
    Fd f(path, O_WRONLY | O_CREAT | O_TRUNC);
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[chunk]);
    for (std::uint64_t off = 0; off < size;) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - off));
        pattern::fill(seed, off, buf.get(), n);
        ssize_t w = ::pwrite(f.get(), buf.get(), n, static_cast<off_t>(off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            throw_errno("write " + path);
        off += static_cast<std::uint64_t>(w);
    }
    if (fsync && ::fsync(f.get()) < 0)
        throw_errno("fsync " + path);
    struct stat st {};
    ::fstat(f.get(), &st);
    return st;
}

// Reads path in `chunk`-sized preads and checks it holds the pattern of `seed` over `size`
// bytes (default: the file size). A mismatch throws EBADMSG with the first differing offset,
// a short file EBADMSG too. Returns the bytes verified.
std::uint64_t verify_pattern_file(const std::string& path, std::uint64_t seed,
                                  std::optional<std::uint64_t> want_size, std::size_t chunk) {
    Fd f(path, O_RDONLY);
    struct stat st {};
    ::fstat(f.get(), &st);
    const std::uint64_t size = want_size.value_or(static_cast<std::uint64_t>(st.st_size));
    std::unique_ptr<std::uint8_t[]> got(new std::uint8_t[chunk]);
    std::unique_ptr<std::uint8_t[]> want(new std::uint8_t[chunk]);
    std::uint64_t off = 0;
    while (off < size) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - off));
        ssize_t r = ::pread(f.get(), got.get(), n, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            throw_errno("read " + path + " at " + std::to_string(off));
        if (r == 0)
            break;
        auto rn = static_cast<std::size_t>(r);
        pattern::fill(seed, off, want.get(), rn);
        if (std::memcmp(got.get(), want.get(), rn) != 0) {
            std::size_t i = 0;
            while (got[i] == want[i])
                ++i;
            throw OpError(EBADMSG, "content mismatch in " + path + " at offset " +
                                       std::to_string(off + i) + ": got 0x" + to_hex(&got[i], 1) +
                                       " want 0x" + to_hex(&want[i], 1));
        }
        off += rn;
    }
    if (off != size)
        throw OpError(EBADMSG, path + " is short: " + std::to_string(off) + " of " +
                                   std::to_string(size) + " bytes");
    return off;
}

// write_file: path, size, seed [, fsync=true, chunk]. Creates/truncates the file.
json op_write_file(const json& req) {
    std::string path = arg_str(req, "path");
    std::uint64_t size = arg_u64(req, "size");
    std::uint64_t seed = arg_u64(req, "seed", 0);
    std::size_t chunk = arg_u64(req, "chunk", kChunk);
    if (chunk == 0 || chunk > 16 * kChunk)
        throw OpError(EINVAL, "write_file: chunk must be 1..16 MiB");
    double t0 = uptime_s();
    struct stat st = write_pattern_file(path, size, seed, chunk, arg_bool(req, "fsync", true));
    return {{"ino", st.st_ino}, {"size", st.st_size}, {"seconds", uptime_s() - t0}};
}

// read_file: path, seed [, size (default: the file size), drop_caches=false]. Verifies the
// pattern; a mismatch fails the op with EBADMSG and the first differing offset.
json op_read_file(const json& req) {
    std::string path = arg_str(req, "path");
    std::uint64_t seed = arg_u64(req, "seed", 0);
    std::optional<std::uint64_t> size;
    if (req.contains("size"))
        size = arg_u64(req, "size");
    if (arg_bool(req, "drop_caches", false))
        drop_caches();
    double t0 = uptime_s();
    std::uint64_t n = verify_pattern_file(path, seed, size, kChunk);
    return {{"bytes", n}, {"verified", true}, {"seconds", uptime_s() - t0}};
}

// file_info: path. Inode, size, fscrypt nonce (null if unencrypted), FIEMAP extents.
json op_file_info(const json& req) {
    std::string path = arg_str(req, "path");
    Fd file(path, O_RDONLY);
    const int fd = file.get();
    struct stat st {};
    fstat(fd, &st);
    json f = {{"ino", st.st_ino}, {"size", st.st_size}, {"blksize", st.st_blksize}};
    std::uint8_t nonce[16];
    if (::ioctl(fd, FS_IOC_GET_NONCE, nonce) == 0)
        f["nonce"] = to_hex(nonce, sizeof nonce);
    else
        f["nonce"] = nullptr;
    constexpr std::uint32_t kMaxExtents = 512;
    std::size_t sz = sizeof(fiemap) + kMaxExtents * sizeof(fiemap_extent);
    std::unique_ptr<std::uint8_t[]> mem(new std::uint8_t[sz]());
    auto* fm = reinterpret_cast<fiemap*>(mem.get());
    fm->fm_start = 0;
    fm->fm_length = ~0ULL;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = kMaxExtents;
    json ext = json::array();
    if (::ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
        for (std::uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
            const auto& e = fm->fm_extents[i];
            ext.push_back({{"logical", e.fe_logical},
                           {"physical", e.fe_physical},
                           {"length", e.fe_length},
                           {"flags", e.fe_flags}});
        }
        f["extents"] = ext;
    } else {
        f["extents"] = nullptr;
        f["fiemap_errno"] = errno_name(errno);
    }
    return f;
}

json op_remove_file(const json& req) {
    std::string path = arg_str(req, "path");
    if (::unlink(path.c_str()) < 0)
        throw_errno("unlink " + path);
    return json::object();
}

} // namespace icemu::guest

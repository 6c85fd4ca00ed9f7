// No copy of a key outlives its use in QEMU's memory: after Linux's eviction (the whole
// x-CRYPTOCFG entry written with zeros), after a host controller disable, and after a machine
// reset, neither half of the AES-256-XTS key may be found anywhere in the QEMU process
// (its heap, the keyslot registers, freed engine buffers, the cipher contexts). The scan reads
// every readable mapping through /proc/PID/mem; as the positive control it must find the key
// while the slot is programmed.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "device/modelled_rig.hpp"

using namespace icemu;
using test::CryptoOptions;
using test::ModelledRig;

namespace {

struct Found {
    std::size_t hits = 0;
    std::string where; // the first mapping that held a copy
};

// Occurrences of each of `needles` (all of one length) in the readable mappings of process
// `pid`, in one pass over its memory (glibc's memmem: the scan reads a few hundred MiB).
std::vector<Found> scan_process(pid_t pid,
                                const std::vector<std::span<const std::uint8_t>>& needles) {
    REQUIRE(!needles.empty());
    const std::size_t len = needles.front().size();
    for (const auto& n : needles)
        REQUIRE(n.size() == len);
    std::vector<Found> found(needles.size());
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    REQUIRE(maps);
    const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
    REQUIRE(mem >= 0);
    std::string line;
    std::vector<std::uint8_t> buf;
    std::size_t scanned = 0;
    while (std::getline(maps, line)) {
        unsigned long lo = 0, hi = 0;
        char perms[8] = {};
        if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            line.find("[vvar") != std::string::npos || line.find("[vsyscall]") != std::string::npos)
            continue;
        for (unsigned long at = lo; at < hi;) {
            const std::size_t chunk = std::min<unsigned long>(hi - at, 16ul << 20);
            buf.resize(chunk);
            const ssize_t got = ::pread(mem, buf.data(), chunk, static_cast<off_t>(at));
            if (got <= 0)
                break; // unreadable (e.g. a guard page): skip the rest of this mapping
            const auto n = static_cast<std::size_t>(got);
            scanned += n;
            for (std::size_t i = 0; i < needles.size(); ++i) {
                const std::uint8_t* p = buf.data();
                std::size_t left = n;
                while (const void* hit = ::memmem(p, left, needles[i].data(), len)) {
                    if (found[i].hits++ == 0)
                        found[i].where = line;
                    const auto skip =
                        static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit) - p + 1);
                    p += skip;
                    left -= skip;
                }
            }
            // overlap the next chunk by len - 1 bytes, so a copy across the boundary is found
            if (n < len || at + n >= hi)
                break;
            at += n - (len - 1);
        }
    }
    ::close(mem);
    REQUIRE(scanned > (16u << 20)); // the scan read QEMU's memory, not nothing
    return found;
}

// Hits of either XTS half of `key`.
std::size_t key_copies(ModelledRig& r, const std::array<std::uint8_t, 64>& key,
                       std::string& where) {
    const pid_t pid = r.rig().machine().pid();
    const std::span<const std::uint8_t> k(key);
    std::size_t n = 0;
    for (const Found& f : scan_process(pid, {k.subspan(0, 32), k.subspan(32, 32)})) {
        if (f.hits && where.empty())
            where = f.where;
        n += f.hits;
    }
    return n;
}

} // namespace

TEST_CASE("no copy of a key stays in QEMU's memory after eviction, disable or reset",
          "[device][crypto][hostile][secrets]") {
    CryptoOptions o;
    o.slots = 8;
    ModelledRig r(test::crypto_controller(o));
    const auto key = test::test_cryptokey(256, 0x5ec2e7);
    r.program(0, 5, key, 4096);
    // use the key for data, so the engine builds its cipher context and stages data
    const auto data = test::pattern_bytes(2 * 4096, 3);
    REQUIRE(r.write(0, 0, 8, data, {true, 5, 100}).ok());
    REQUIRE(r.read(0, 0, 8, 2, {true, 5, 100}).ok());

    std::string where;
    // the positive control: while the slot holds it, the key is in QEMU's memory
    REQUIRE(key_copies(r, key, where) > 0);

    SECTION("Linux's eviction: the whole configuration entry written with zeros") {
        r.evict(0, 5);
    }
    SECTION("a host controller disable (crypto-wipe-on-disable, the default)") {
        r.host().wreg(ufs::reg::kHce, 0);
    }
    SECTION("a machine reset") {
        r.rig().machine().qmp("system_reset");
        // qtest clock: the reset runs synchronously with the QMP command
    }
    where.clear();
    const std::size_t left = key_copies(r, key, where);
    INFO("first copy found in: " << where);
    CHECK(left == 0);
}

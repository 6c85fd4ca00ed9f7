// icemu-lblk32-wrap: finds a master key whose IV_INO_LBLK_32 inode hash puts the 32-bit DUN wrap
// inside a file, for scenarios that test the wrap (fs/crypto/block.c fscrypt_limit_io_blocks).
// With IV_INO_LBLK_32 the DUN of logical block L of inode I is (u32)(hashed_ino(I) + L), so it
// wraps from 0xffffffff to 0 at L = 2^32 - hashed_ino(I). Candidate keys are SHA-512(seed ||
// le64(n)) for n = 0, 1, ...; the first key with that L in [min, max] for one of the inodes is
// printed (JSON: key, ino, hashed_ino, wrap_lblk, n). Deterministic: the same arguments give the
// same key.
//
//   icemu-lblk32-wrap --ino 13 [--ino 14 ...] --min-lblk 64 --max-lblk 960 [--seed TEXT]
#include "icemu/models/fscrypt.hpp"

#include <cryptopp/sha.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace fc = icemu::models::fscrypt;

int main(int argc, char** argv) {
    std::vector<std::uint64_t> inos;
    std::uint64_t lo = 1, hi = 1024, limit = 1ull << 32;
    std::string seed = "icemu IV_INO_LBLK_32 wrap";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "icemu-lblk32-wrap: %s needs a value\n", a.c_str());
            return 2;
        }
        const char* v = argv[++i];
        if (a == "--ino") {
            inos.push_back(std::strtoull(v, nullptr, 0));
        } else if (a == "--min-lblk") {
            lo = std::strtoull(v, nullptr, 0);
        } else if (a == "--max-lblk") {
            hi = std::strtoull(v, nullptr, 0);
        } else if (a == "--seed") {
            seed = v;
        } else if (a == "--limit") {
            limit = std::strtoull(v, nullptr, 0);
        } else {
            std::fprintf(stderr, "usage: icemu-lblk32-wrap --ino N [--ino N ...] --min-lblk A "
                                 "--max-lblk B [--seed TEXT] [--limit TRIES]\n");
            return 2;
        }
    }
    if (inos.empty() || lo == 0 || hi < lo) {
        std::fprintf(stderr, "icemu-lblk32-wrap: need --ino and 0 < --min-lblk <= --max-lblk\n");
        return 2;
    }
    icemu::models::Bytes msg(seed.begin(), seed.end());
    msg.resize(seed.size() + 8);
    icemu::models::Bytes key(CryptoPP::SHA512::DIGESTSIZE);
    for (std::uint64_t n = 0; n < limit; ++n) {
        for (unsigned b = 0; b < 8; ++b) {
            msg[seed.size() + b] = static_cast<std::uint8_t>(n >> (8 * b));
        }
        CryptoPP::SHA512().CalculateDigest(key.data(), msg.data(), msg.size());
        const fc::SipKey hk = fc::inode_hash_key(key);
        for (std::uint64_t ino : inos) {
            const std::uint32_t h = fc::hashed_ino(hk, ino);
            const std::uint64_t wrap = (std::uint64_t{1} << 32) - h;
            if (wrap >= lo && wrap <= hi) {
                std::printf(
                    "{\"key\": \"%s\", \"ino\": %llu, \"hashed_ino\": %u, "
                    "\"wrap_lblk\": %llu, \"n\": %llu}\n",
                    icemu::models::to_hex(key).c_str(), static_cast<unsigned long long>(ino), h,
                    static_cast<unsigned long long>(wrap), static_cast<unsigned long long>(n));
                return 0;
            }
        }
    }
    std::fprintf(stderr, "icemu-lblk32-wrap: no key within --limit tries\n");
    return 1;
}

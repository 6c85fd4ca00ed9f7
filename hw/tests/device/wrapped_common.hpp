// What the UFS and the eMMC key-manager tests (test_wrapped_keys.cpp,
// test_cqhci_wrapped_keys.cpp) share: one key manager client, so the same keys, blobs, refusal
// tables and "no secret anywhere" scan serve both front ends.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "icemu/models/xts.hpp"
#include "ufs/keymanager.hpp"

namespace icemu::test::wrapped {

inline constexpr std::uint64_t kBuffer = 0x00800000; // command buffer in guest RAM (8 MiB)
// base64 of the 32 bytes 0x00..0x1f and of 0xa0..0xbf (two long-term wrapping keys)
inline constexpr const char* kLtSecretA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
inline constexpr const char* kLtSecretB = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=";

std::string status_of(const ufs::km::Result& r);

/// A 32-byte raw key, a different one for each seed.
std::vector<std::uint8_t> raw_key(std::uint8_t seed);

/// The event log's lines with "ev" = `ev` (every line for nullptr), in order.
std::vector<nlohmann::json> log_lines(const std::filesystem::path& path, const char* ev);

struct Blobs {
    std::vector<std::uint8_t> lt;
    std::vector<std::uint8_t> eph;
};

/// IMPORT + PREPARE: the long-term and ephemeral blobs of `raw` (REQUIREs both succeed).
Blobs wrap_key(ufs::km::KeyManager& km, std::span<const std::uint8_t> raw);

/// A command the key manager must refuse with status `want`.
struct Refusal {
    const char* what;
    ufs::km::Result r;
    const char* want;
};

/// Each refusal has its status, no output and no output length.
void check_refusals(const std::vector<Refusal>& cases);

/// Every byte of both blobs is authenticated: one flipped bit in each byte (bit i % 8 of the
/// long-term blob, bit 7 - i % 8 of the ephemeral one) makes PREPARE of the long-term blob and
/// PROGRAM (into `slot`) and DERIVE of the ephemeral blob fail with "blob": 3 refusals a byte.
void check_every_bit_authenticated(ufs::km::KeyManager& km, const Blobs& b, unsigned slot);

/// Where an 8-byte window of one of `secrets` (at a 4-byte offset), as a hex run or as a 32-bit
/// register value (as traces print MMIO data), occurs in one of `texts` (name, text): one line
/// per find, empty when nothing leaked.
std::vector<std::string>
exposures(const std::vector<std::pair<const char*, models::Bytes>>& secrets,
          const std::vector<std::pair<const char*, std::string>>& texts);

} // namespace icemu::test::wrapped

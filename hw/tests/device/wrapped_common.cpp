#include "device/wrapped_common.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cstdio>
#include <fstream>

namespace icemu::test::wrapped {

std::string status_of(const ufs::km::Result& r) {
    return ufs::km::status_name(r.status);
}

std::vector<std::uint8_t> raw_key(std::uint8_t seed) {
    std::vector<std::uint8_t> k(ufs::km::kKeyLen);
    for (std::size_t i = 0; i < k.size(); ++i) {
        k[i] = static_cast<std::uint8_t>(seed * 37 + i * 11 + 1);
    }
    return k;
}

std::vector<nlohmann::json> log_lines(const std::filesystem::path& path, const char* ev) {
    std::vector<nlohmann::json> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        auto j = nlohmann::json::parse(line);
        if (!ev || j.at("ev") == ev) {
            out.push_back(std::move(j));
        }
    }
    return out;
}

Blobs wrap_key(ufs::km::KeyManager& km, std::span<const std::uint8_t> raw) {
    const auto lt = km.import_key(raw);
    REQUIRE(status_of(lt) == "ok");
    const auto eph = km.prepare(lt.out);
    REQUIRE(status_of(eph) == "ok");
    return {lt.out, eph.out};
}

void check_refusals(const std::vector<Refusal>& cases) {
    for (const auto& c : cases) {
        INFO(c.what);
        CHECK(status_of(c.r) == c.want);
        CHECK(c.r.out.empty());
        CHECK((c.r.kmsts >> 16) == 0u);
    }
}

void check_every_bit_authenticated(ufs::km::KeyManager& km, const Blobs& b, unsigned slot) {
    for (std::size_t i = 0; i < ufs::km::kBlobLen; ++i) {
        const auto bit = static_cast<unsigned>(i % 8);
        auto t = b.lt;
        t[i] ^= static_cast<std::uint8_t>(1u << bit);
        auto e = b.eph;
        e[i] ^= static_cast<std::uint8_t>(0x80u >> bit);
        INFO("byte " << i);
        CHECK(status_of(km.prepare(t)) == "blob");
        CHECK(status_of(km.program(e, slot, 4096)) == "blob");
        CHECK(status_of(km.derive(e)) == "blob");
    }
}

std::vector<std::string>
exposures(const std::vector<std::pair<const char*, models::Bytes>>& secrets,
          const std::vector<std::pair<const char*, std::string>>& texts) {
    std::vector<std::string> found;
    for (const auto& [what, bytes] : secrets) {
        const auto hex = models::to_hex(bytes);
        for (std::size_t off = 0; off + 8 <= bytes.size(); off += 4) {
            const auto run = hex.substr(2 * off, 16);
            char dword[16];
            std::snprintf(dword, sizeof(dword), "0x%x",
                          static_cast<unsigned>(bytes[off] | bytes[off + 1] << 8 |
                                                bytes[off + 2] << 16 |
                                                static_cast<unsigned>(bytes[off + 3]) << 24));
            for (const auto& [where, text] : texts) {
                for (const std::string& needle : {run, std::string(dword)}) {
                    if (text.find(needle) != std::string::npos) {
                        found.push_back(std::string(what) + " at byte " + std::to_string(off) +
                                        " in the " + where + " (" + needle + ")");
                    }
                }
            }
        }
    }
    return found;
}

} // namespace icemu::test::wrapped

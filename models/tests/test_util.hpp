// Shared helpers for the models' unit tests.
#pragma once

#include "icemu/models/ufshci_crypto.hpp"
#include "icemu/models/xts.hpp"

#include <catch2/catch_get_random_seed.hpp>
#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace icemu::models::test {

/// A PRNG seeded from Catch2's --rng-seed (printed by Catch on failure, reproducible).
inline std::mt19937_64& rng() {
    static std::mt19937_64 gen(Catch::getSeed());
    return gen;
}

inline std::vector<std::uint8_t> random_bytes(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) {
        b = static_cast<std::uint8_t>(rng()());
    }
    return v;
}

/// Drives the register model with MMIO writes the way Linux does and records the events it
/// predicts, numbered like the device's log. program_slot is ufshcd_program_key's 19 writes
/// (dword16 = 0, key dwords 0-15, dword17, dword16 last); evict_slot is the same with a zero key.
struct EngineLog {
    ufshci::Engine engine;
    std::vector<events::Event> log;
    std::string ctrl;

    EngineLog(ufshci::Config c, std::string ctrl_id)
        : engine(std::move(c)), ctrl(std::move(ctrl_id)) {
        push(engine.realize_event());
    }
    void push(events::Body b) {
        events::Event e;
        e.seq = log.size();
        e.ctrl = ctrl;
        e.body = std::move(b);
        log.push_back(std::move(e));
    }
    void write(std::uint32_t off, std::uint32_t v) {
        for (auto& fx : engine.write(off, v)) {
            push(std::move(fx));
        }
    }
    void program_slot(unsigned slot, const Bytes& key, std::uint32_t dw16) {
        const auto ck = cryptokey_from_xts_key(key);
        const std::uint32_t base = ufshci::cfg_offset(slot, 0);
        write(base + 0x40, 0);
        for (unsigned i = 0; i < 16; ++i) {
            write(base + 4 * i, static_cast<std::uint32_t>(ck[4 * i]) |
                                    static_cast<std::uint32_t>(ck[4 * i + 1]) << 8 |
                                    static_cast<std::uint32_t>(ck[4 * i + 2]) << 16 |
                                    static_cast<std::uint32_t>(ck[4 * i + 3]) << 24);
        }
        write(base + 0x44, 0);
        write(base + 0x40, dw16);
    }
    void evict_slot(unsigned slot) { program_slot(slot, Bytes(64, 0), 0); }
};

} // namespace icemu::models::test

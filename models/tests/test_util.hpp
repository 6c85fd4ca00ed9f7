// Shared helpers for the models' unit tests.
#pragma once

#include <catch2/catch_get_random_seed.hpp>
#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <random>
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

} // namespace icemu::models::test

// The operation loop of the randomized differential tests (UFS and CQHCI): runs `ops` steps of
// a driver whose step(divergence) returns a description of what it did and fills `divergence`
// when the device and the model disagreed; the first divergence fails the test with the seed
// and the last 12 operations.
#pragma once

#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <deque>
#include <string>

namespace icemu::test {

template <typename Driver>
void run_differential(Driver& drv, std::uint64_t seed, std::size_t ops) {
    std::deque<std::string> recent;
    for (std::size_t i = 0; i < ops; ++i) {
        std::string divergence;
        const std::string what = drv.step(divergence);
        recent.push_back(std::to_string(i) + ": " + what);
        if (recent.size() > 12) {
            recent.pop_front();
        }
        if (!divergence.empty()) {
            std::string history;
            for (const auto& h : recent) {
                history += "  " + h + "\n";
            }
            FAIL("seed " << seed << ": divergence at operation " << i << " (" << what
                         << "): " << divergence << "\nlast operations:\n"
                         << history);
        }
    }
}

} // namespace icemu::test

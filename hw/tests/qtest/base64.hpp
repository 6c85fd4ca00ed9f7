// Base64 (RFC 4648, with padding) for qtest's b64read/b64write commands.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace icemu::qtest {

std::string base64_encode(std::span<const std::uint8_t> data);

// Throws std::invalid_argument on characters outside the alphabet.
std::vector<std::uint8_t> base64_decode(std::string_view text);

} // namespace icemu::qtest

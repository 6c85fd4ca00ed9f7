// Small helpers of icemu-check (run.hpp).
#include "run.hpp"

#include <sstream>

namespace icemu::checker::detail {

const json& at(const json& j, const char* k) {
    static const json null;
    if (j.is_object()) {
        auto it = j.find(k);
        if (it != j.end()) {
            return *it;
        }
    }
    return null;
}

std::string str(const json& j, const char* k, std::string d) {
    if (j.is_object() && j.contains(k) && j[k].is_string()) {
        return j[k].get<std::string>();
    }
    return d;
}

std::uint64_t u64(const json& j, const char* k, std::uint64_t d) {
    if (j.is_object() && j.contains(k)) {
        const json& v = j[k];
        if (v.is_number_unsigned() || v.is_number_integer()) {
            return v.get<std::uint64_t>();
        }
        if (v.is_string()) {
            try {
                return std::stoull(v.get<std::string>(), nullptr, 0);
            } catch (const std::exception&) {
                return d;
            }
        }
    }
    return d;
}

bool starts_under(const std::string& path, const std::string& dir) {
    if (dir.empty()) {
        return false;
    }
    const std::string d = dir.back() == '/' ? dir : dir + "/";
    return path.rfind(d, 0) == 0;
}

std::string hex_u64(std::uint64_t v) {
    std::ostringstream o;
    o << "0x" << std::hex << v;
    return o.str();
}

Bytes parse_uuid(const std::string& s) {
    std::string h;
    for (char c : s) {
        if (c != '-') {
            h.push_back(c);
        }
    }
    if (h.size() != 32) {
        return {};
    }
    try {
        return models::from_hex(h);
    } catch (const std::exception&) {
        return {};
    }
}

} // namespace icemu::checker::detail

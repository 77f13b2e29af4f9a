//! Verifiable redirects (RFC 8252 §8.6): whether a `redirect_uri` names a host
//! that only the client's owner can serve, so that redirecting there proves
//! which application receives the authorization response.
//!
//! This is pure string work on the URI as given, a few passes over it, so
//! linear in its length whatever it holds. [`is_verifiable_redirect`]
//! allocates nothing: the host is decoded and lowercased on the fly, never
//! copied, however long it is. [`is_verifiable_redirect`] lists the rules;
//! the crate's rules chapter (`rules`, "Verifiable redirects") says where
//! they come from.

/// Whether `uri` is a verifiable redirect (RFC 8252 §8.6): an `https` URI
/// whose host only its owner can serve.
///
/// The rules, in order:
///
/// 1. The scheme is `https`, compared ASCII case-insensitively.
/// 2. The URI parses per RFC 3986: only unreserved, reserved and
///    percent-encoded (`%` HEXDIG HEXDIG) characters, each where the grammar
///    allows it (a space, a non-ASCII byte, a lone `%` or a second `#` does
///    not parse), and it has an authority (`https://…`). Userinfo and port
///    do not count.
/// 3. A host name is percent-decoded, then ASCII-lowercased, then stripped of
///    one trailing dot. It must be non-empty and all ASCII, and it must not be
///    `localhost`, end in `.localhost`, or spell a loopback IPv4 address.
/// 4. IPv4 addresses are read in every `inet_aton` spelling (`127.1`,
///    `0x7f.0.0.1`, `0177.0.0.1`, `2130706433`); `127.0.0.0/8` and the
///    unspecified `0.0.0.0` (`0`, `0x0`, …) are loopback. A part out of range
///    or not a number makes the host a plain name.
/// 5. An IP literal must be an IPv6 address (RFC 4291 §2.2 text forms) other
///    than `::1`, `::` and the IPv4-mapped forms (`::ffff:127.0.0.1`,
///    `::ffff:7f00:1`, …) of loopback IPv4 addresses. A zone identifier
///    (`[fe80::1%25eth0]`) or an IPvFuture literal (`[v1.x]`) is
///    unverifiable. IPv4-compatible forms (`[::127.0.0.1]`) are not loopback.
///
/// Everything else (a custom scheme such as `com.example.app:/cb`, `http`, a
/// loopback host, unparsable text, the empty string) is unverifiable.
///
/// ```
/// use scope_policy::is_verifiable_redirect;
///
/// assert!(is_verifiable_redirect("https://app.example.com/callback"));
/// assert!(!is_verifiable_redirect("https://127.1/callback"));
/// assert!(!is_verifiable_redirect("com.example.app:/callback"));
/// ```
#[must_use]
pub fn is_verifiable_redirect(uri: &str) -> bool {
    parse(uri).is_some_and(|uri| {
        uri.scheme.eq_ignore_ascii_case("https") && uri.host.is_some_and(|host| is_remote(&host))
    })
}

/// The host of `uri` as a consent screen should show it: percent-decoded,
/// lowercased, without one trailing dot; `None` when the URI does not parse
/// per RFC 3986 or has no host (custom schemes without authority, garbage).
/// For an IP literal, the text inside the brackets, with the brackets.
///
/// Any scheme is read, so `http://localhost:8080/cb` gives `localhost`. A
/// decoded byte that a host name cannot hold as it is (non-ASCII, a control
/// byte, a space, `/`, `@`, `:`, `%`, …: anything but RFC 3986's unreserved
/// characters and sub-delims) is shown escaped again, `%` and two uppercase
/// hex digits, so the screen never shows `bank.example/` for
/// `bank.example%2F.evil.example`. An IPv6 literal with a zone identifier is
/// not RFC 3986 and gives `None`.
///
/// ```
/// use scope_policy::redirect_host;
///
/// assert_eq!(redirect_host("https://User@EXAMPLE.com.:8443/x").as_deref(), Some("example.com"));
/// assert_eq!(redirect_host("https://bank.example%2f.evil.example/").as_deref(), Some("bank.example%2F.evil.example"));
/// assert_eq!(redirect_host("com.example.app:/callback"), None);
/// ```
#[must_use]
pub fn redirect_host(uri: &str) -> Option<String> {
    match parse(uri)?.host? {
        Host::Ipv6(text, _) | Host::Future(text) => Some(format!("[{}]", text.to_ascii_lowercase())),
        Host::Name(raw) => {
            let mut host = String::with_capacity(raw.len());
            for byte in normalised(raw) {
                if is_reg_name_byte(byte) {
                    host.push(char::from(byte));
                } else {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    let hex = |nibble: u8| HEX.get(usize::from(nibble)).map_or('0', |&d| char::from(d));
                    host.extend(['%', hex(byte >> 4), hex(byte & 0xf)]);
                }
            }
            (!host.is_empty()).then_some(host)
        }
    }
}

/// A URI reduced to what the classification needs (RFC 3986 §3).
struct Uri<'a> {
    /// As written: compare it ASCII case-insensitively.
    scheme: &'a str,
    /// `None` without an authority (`com.example.app:/cb`, `https:example.com`).
    host: Option<Host<'a>>,
}

/// The host of an authority (RFC 3986 §3.2.2), as written.
enum Host<'a> {
    /// An IPv6 address: its text inside the brackets and its value.
    Ipv6(&'a str, u128),
    /// An IPvFuture literal (`v1.x`): its text inside the brackets.
    Future(&'a str),
    /// A reg-name, maybe empty, still percent-encoded.
    // INVARIANT: it passed `is_encoded`, so every `%` in it starts an escape.
    Name(&'a str),
}

/// `uri` split per RFC 3986 §3 (scheme ":" hier-part [ "?" query ] [ "#" fragment ])
/// and checked byte by byte, or `None` when it does not parse.
fn parse(uri: &str) -> Option<Uri<'_>> {
    let (scheme, rest) = uri.split_once(':')?;
    if !is_scheme(scheme) {
        return None;
    }
    // RFC 3986 §3.2: the authority follows `//` and ends at the first `/`, `?` or `#`.
    let (authority, tail) = match rest.strip_prefix("//") {
        Some(rest) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at_checked(end)?;
            (Some(authority), tail)
        }
        None => (None, rest),
    };
    if !is_path_query_fragment(tail) {
        return None;
    }
    let host = match authority {
        Some(authority) => Some(parse_authority(authority)?),
        None => None,
    };
    Some(Uri { scheme, host })
}

/// Whether `scheme` = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Whether `tail` is a path, then an optional `?` query, then an optional `#`
/// fragment (RFC 3986 §3.3, §3.4, §3.5).
fn is_path_query_fragment(tail: &str) -> bool {
    // After an authority the path is empty or starts with `/` (path-abempty), as the
    // authority ends at the first `/`, `?` or `#`. Without one, a path cannot start
    // with `//` (path-absolute), as `//` starts an authority.
    let (rest, fragment) = tail.split_once('#').unwrap_or((tail, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    is_encoded(path, is_path_byte) && is_encoded(query, is_query_byte) && is_encoded(fragment, is_query_byte)
}

/// The host of `authority` = [ userinfo "@" ] host [ ":" port ], or `None`
/// when it does not parse (RFC 3986 §3.2).
fn parse_authority(authority: &str) -> Option<Host<'_>> {
    // `@` is not a userinfo byte, so a second `@` ends up in the host, where it
    // does not parse either.
    let host_port = match authority.split_once('@') {
        Some((userinfo, host_port)) if is_encoded(userinfo, is_userinfo_byte) => host_port,
        Some(_) => return None,
        None => authority,
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(literal) => {
            let (inside, port) = literal.split_once(']')?;
            (parse_ip_literal(inside)?, port)
        }
        None => {
            let end = host_port.find(':').unwrap_or(host_port.len());
            let (name, port) = host_port.split_at_checked(end)?;
            if !is_encoded(name, is_reg_name_byte) {
                return None;
            }
            (Host::Name(name), port)
        }
    };
    // RFC 3986 §3.2.3: port = *DIGIT, maybe empty.
    let is_port = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    is_port.then_some(host)
}

/// The IP-literal inside `[...]`: an IPv6 address or an IPvFuture literal, or
/// `None` (RFC 3986 §3.2.2; a zone identifier is RFC 6874, not RFC 3986).
fn parse_ip_literal(inside: &str) -> Option<Host<'_>> {
    if is_ipv_future(inside) {
        return Some(Host::Future(inside));
    }
    parse_ipv6(inside).map(|address| Host::Ipv6(inside, address))
}

/// Whether `text` = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) (RFC 3986 §3.2.2).
fn is_ipv_future(text: &str) -> bool {
    let Some((version, address)) = text
        .strip_prefix(['v', 'V'])
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    // The address takes the bytes of userinfo: unreserved, sub-delims and `:`.
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_hexdigit())
        && !address.is_empty()
        && address.bytes().all(is_userinfo_byte)
}

/// The value of an IPv6 address in an RFC 4291 §2.2 text form: up to 8 groups
/// of 1 to 4 hex digits, at most one `::`, maybe ending in a dotted quad.
fn parse_ipv6(text: &str) -> Option<u128> {
    let Some((high, low)) = text.split_once("::") else {
        return parse_ipv6_groups(text, true)
            .filter(|&(_, bits)| bits == 128)
            .map(|(value, _)| value);
    };
    // A second `::` leaves an empty group in `low`, which does not parse. The `::`
    // stands for one group of zeros or more; a dotted quad can only end the address.
    let (high, high_bits) = parse_ipv6_groups(high, false)?;
    let (low, low_bits) = parse_ipv6_groups(low, true)?;
    if high_bits + low_bits > 112 {
        return None;
    }
    Some(high.checked_shl(128 - high_bits).unwrap_or(0) | low)
}

/// `h16 *( ":" h16 )`, maybe empty, whose last group may be a dotted quad when
/// `quad_last` (RFC 4291 §2.2 forms 1 and 3): its value and its width in bits,
/// at most 128.
fn parse_ipv6_groups(text: &str, quad_last: bool) -> Option<(u128, u32)> {
    if text.is_empty() {
        return Some((0, 0));
    }
    let (mut value, mut bits) = (0u128, 0u32);
    let mut groups = text.split(':').peekable();
    while let Some(group) = groups.next() {
        let (group, width) = match parse_h16(group) {
            Some(group) => (u128::from(group), 16),
            None if quad_last && groups.peek().is_none() => (u128::from(parse_dotted_quad(group)?), 32),
            None => return None,
        };
        bits += width;
        if bits > 128 {
            return None;
        }
        value = value << width | group;
    }
    Some((value, bits))
}

/// The value of h16 = 1*4HEXDIG, case-insensitive (RFC 3986 §3.2.2).
fn parse_h16(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    text.bytes()
        .try_fold(0u16, |value, b| Some(value << 4 | u16::from(hex_value(b)?)))
}

/// The value of a dotted quad of RFC 3986 §3.2.2 dec-octets: four parts
/// `0` to `255`, no leading zeros.
fn parse_dotted_quad(text: &str) -> Option<u32> {
    let mut parts = 0;
    let mut value = 0u32;
    for part in text.split('.') {
        let is_dec_octet = matches!(part.len(), 1..=3)
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part.len() == 1 || !part.starts_with('0'));
        if !is_dec_octet {
            return None;
        }
        let octet: u8 = part.parse().ok()?;
        parts += 1;
        if parts > 4 {
            return None;
        }
        value = value << 8 | u32::from(octet);
    }
    (parts == 4).then_some(value)
}

/// Whether an IPv6 address reaches the local machine: `::1`, `::`, or the
/// IPv4-mapped form (`::ffff:0:0/96`, RFC 4291 §2.5.5.2) of a loopback IPv4
/// address. IPv4-compatible forms (`::127.0.0.1`) are not loopback: they do
/// not reach the local machine.
fn is_loopback_ipv6(address: u128) -> bool {
    let is_mapped = address >> 32 == 0xffff;
    address <= 1 || is_mapped && u32::try_from(address & 0xffff_ffff).is_ok_and(is_loopback_ipv4)
}

/// Whether an IPv4 address reaches the local machine: `127.0.0.0/8`
/// (RFC 1122 §3.2.1.3) or the unspecified `0.0.0.0`.
fn is_loopback_ipv4(address: u32) -> bool {
    address >> 24 == 127 || address == 0
}

/// Whether `host` is served only by its owner: a name or an IPv6 address that
/// is not loopback, not empty, ASCII.
fn is_remote(host: &Host<'_>) -> bool {
    match *host {
        Host::Ipv6(_, address) => !is_loopback_ipv6(address),
        Host::Future(_) => false,
        Host::Name(raw) => {
            let name = normalised(raw);
            let len = name.clone().count();
            len > 0
                && name.clone().all(|b| b.is_ascii())
                && !is_loopback_name(name.clone(), len)
                && !parse_ipv4(name).is_some_and(is_loopback_ipv4)
        }
    }
}

/// A reg-name as the rules normalise it, one byte at a time:
/// percent-decoded, then ASCII-lowercased, then without one trailing dot
/// (RFC 3986 §6.2.2.1, §6.2.2.2).
// INVARIANT (relied on): `raw` passed `is_encoded`.
fn normalised(raw: &str) -> impl Iterator<Item = u8> + Clone + '_ {
    // Removing the dot before decoding is the same as after: the decoded name ends in
    // `.` exactly when the raw one ends in `.` or in the escape `%2e`, because every `%`
    // starts an escape (the INVARIANT) and no hex digit is a `%`.
    let raw = raw.as_bytes();
    let dot = [&b"."[..], b"%2e", b"%2E"]
        .into_iter()
        .find_map(|dot| raw.strip_suffix(dot));
    Decoded(dot.unwrap_or(raw)).map(|b| b.to_ascii_lowercase())
}

/// The bytes of a percent-encoded text, each `%XX` escape decoded (RFC 3986 §2.1).
// INVARIANT (relied on): the text passed `is_encoded`. Without it a `%` that
// starts no escape would be read wrongly, though never with a panic.
#[derive(Clone)]
struct Decoded<'a>(&'a [u8]);

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (byte, rest) = match self.0 {
            [b'%', high, low, rest @ ..] => (hex_value(*high)? << 4 | hex_value(*low)?, rest),
            [byte, rest @ ..] => (*byte, rest),
            [] => return None,
        };
        self.0 = rest;
        Some(byte)
    }
}

/// Whether the normalised name `name` of length `len` is `localhost` or ends
/// in `.localhost` (RFC 6761 §6.3).
fn is_loopback_name(name: impl Iterator<Item = u8> + Clone, len: usize) -> bool {
    name.clone().eq(*b"localhost")
        || len
            .checked_sub(10)
            .is_some_and(|skip| name.skip(skip).eq(*b".localhost"))
}

/// The IPv4 address that an `inet_aton` spelling of it denotes, or `None` when
/// `name` is not one (the forms of POSIX `inet_addr`): 1 to 4
/// dot-separated parts, the last one filling the remaining bytes.
fn parse_ipv4(name: impl Iterator<Item = u8>) -> Option<u32> {
    let mut high = 0u32; // the parts before the current one, one byte each
    let mut parts = 1u32; // INVARIANT: 1 to 4, counting the current part
    let mut part = Ipv4Part::default();
    for byte in name {
        if byte != b'.' {
            part.push(byte)?;
            continue;
        }
        let octet = u8::try_from(part.value()?).ok()?;
        if parts == 4 {
            return None;
        }
        high = high << 8 | u32::from(octet);
        parts += 1;
        part = Ipv4Part::default();
    }
    // With the INVARIANT, the last part fills 32, 24, 16 or 8 bits.
    let width = 8 * (5 - parts);
    let last = part.value()?;
    if u64::from(last) >> width != 0 {
        return None;
    }
    Some(high.checked_shl(width).unwrap_or(0) | last)
}

/// One part of an `inet_aton` address while it is read: decimal, octal after a
/// leading `0`, or hexadecimal after `0x` (lowercase, as the name is).
#[derive(Default)]
struct Ipv4Part {
    /// 0 before the first byte, then 8, 10 or 16.
    radix: u32,
    value: u32,
    /// The digits read, after the `0x` of a hexadecimal part.
    digits: usize,
}

impl Ipv4Part {
    /// Takes the next byte of the part, or `None` when the part is not a number
    /// that fits 32 bits.
    fn push(&mut self, byte: u8) -> Option<()> {
        match (self.radix, self.digits, byte) {
            // A leading `0` is the first digit of an octal part.
            (0, _, b'0') => self.radix = 8,
            (0, _, _) => self.radix = 10,
            (8, 1, b'x') => {
                self.radix = 16;
                self.digits = 0;
                return Some(());
            }
            _ => {}
        }
        let digit = u32::from(hex_value(byte)?);
        if digit >= self.radix {
            return None;
        }
        self.value = self.value.checked_mul(self.radix)?.checked_add(digit)?;
        self.digits += 1;
        Some(())
    }

    /// The part's value, or `None` for an empty part. A bare `0x` is 0, as
    /// browsers read it (the WHATWG URL standard's IPv4 number parser), so
    /// `https://0x/` reaches `0.0.0.0` and is loopback; glibc's `inet_aton`
    /// would call it no number, which would make it a verifiable name.
    fn value(&self) -> Option<u32> {
        (self.digits > 0 || self.radix == 16).then_some(self.value)
    }
}

/// The value of a hex digit, either case.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Whether `text` holds only bytes `allowed` and `%` HEXDIG HEXDIG escapes
/// (RFC 3986 §2.1).
// INVARIANT (set up here): in a text that passes, every `%` starts an escape;
// `normalised` and `Decoded` rely on it.
fn is_encoded(text: &str, allowed: fn(u8) -> bool) -> bool {
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        let is_valid = match byte {
            b'%' => {
                bytes.next().is_some_and(|b| b.is_ascii_hexdigit())
                    && bytes.next().is_some_and(|b| b.is_ascii_hexdigit())
            }
            _ => allowed(byte),
        };
        if !is_valid {
            return false;
        }
    }
    true
}

// RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

// RFC 3986 §2.2: sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "=".
const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

// RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ), escapes aside.
const fn is_reg_name_byte(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b)
}

// RFC 3986 §3.2.1: userinfo = *( unreserved / pct-encoded / sub-delims / ":" ), escapes aside.
const fn is_userinfo_byte(b: u8) -> bool {
    is_reg_name_byte(b) || b == b':'
}

// RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; a path adds "/".
const fn is_path_byte(b: u8) -> bool {
    is_userinfo_byte(b) || b == b'@' || b == b'/'
}

// RFC 3986 §3.4, §3.5: query = fragment = *( pchar / "/" / "?" ).
const fn is_query_byte(b: u8) -> bool {
    is_path_byte(b) || b == b'?'
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use proptest::prelude::*;

    use super::*;

    // One row per line, like every table of the crate: rustfmt would split the long ones.
    #[rustfmt::skip]
    const CASES: &[(&str, &str, bool)] = &[
        // about, redirect_uri, verifiable
        // Verifiable: https, a parsable URI, a host that is not loopback.
        ("a plain https URI is verifiable",           "https://app.example.com/callback",           true),
        ("a query and a fragment do not count",       "https://app.example.com/cb?state=a%20b#top", true),
        ("a URI without a path is verifiable",        "https://app.example.com",                    true),
        ("a port does not count",                     "https://app.example.com:8443/cb",            true),
        ("an empty port is allowed",                  "https://app.example.com:/cb",                true),
        ("userinfo does not count",                   "https://user:pw@app.example.com/cb",         true),
        ("the scheme is case-insensitive",            "HTTPS://app.example.com/cb",                 true),
        ("the scheme in mixed case",                  "HtTpS://app.example.com/cb",                 true),
        ("an upper-case host is a name like another", "https://APP.EXAMPLE.COM/cb",                 true),
        ("one trailing dot is allowed",               "https://app.example.com./cb",                true),
        ("sub-delims are reg-name bytes",             "https://a!$&'()*+,;=b.example/",             true),
        ("an escaped dot inside a name",              "https://app%2eexample.com/",                 true),
        ("localhost as userinfo does not count",      "https://localhost@evil.example/",            true),
        ("localhost as the first label is a name",    "https://localhost.example.com/",             true),
        ("localhost as a middle label is a name",     "https://a.localhost.example/",               true),
        ("a name ending in localhost without a dot",  "https://notlocalhost/",                      true),
        // Lowercased, `localhost..` loses ONE dot: `localhost.` is neither `localhost` nor
        // `*.localhost`, nor an address, so by the letter of the rules it is a name.
        ("two trailing dots lose only one", "https://localhost../", true),
        // Names that look like IPv4 but are not an `inet_aton` spelling, and public addresses.
        ("a public IPv4 address",                      "https://203.0.113.7/",       true),
        ("128.0.0.1 is past 127.0.0.0/8",              "https://128.0.0.1/",         true),
        ("126.0.0.1 is before 127.0.0.0/8",            "https://126.0.0.1/",         true),
        ("a part over 255 makes a name",               "https://256.0.0.1/",         true),
        ("a last part over its byte makes a name",     "https://127.0.0.256/",       true),
        ("127.16777216 overflows its three bytes",     "https://127.16777216/",      true),
        ("a hex number over 32 bits makes a name",     "https://0x100000000/",       true),
        ("a decimal number over 32 bits makes a name", "https://4294967296/",        true),
        ("five parts make a name",                     "https://127.0.0.0.1/",       true),
        ("five parts ending in 0 make a name",         "https://127.0.0.1.0/",       true),
        ("an empty part makes a name",                 "https://127..0.1/",          true),
        ("a leading empty part makes a name",          "https://.127.0.0.1/",        true),
        ("8 is not an octal digit",                    "https://0128.0.0.1/",        true),
        ("a letter makes a name",                      "https://127.0.0.1a/",        true),
        ("hex digits need 0x",                         "https://7f.0.0.1/",          true),
        ("0x needs hex digits after it, if any",       "https://127.0xg/",           true),
        ("a label after an address makes a name",      "https://127.0.0.1.example/", true),
        // IPv6 addresses that are not loopback.
        ("an IPv6 address",                          "https://[2001:db8::1]/cb",            true),
        ("an IPv6 address with a port",              "https://[2001:db8::1]:8443/cb",       true),
        ("::2 is not loopback",                      "https://[::2]/",                      true),
        ("1:: is not loopback",                      "https://[1::]/",                      true),
        ("IPv4-compatible forms are not loopback",   "https://[::127.0.0.1]/",              true),
        ("the same in hex",                          "https://[::7f00:1]/",                 true),
        ("a mapped public address",                  "https://[::ffff:128.0.0.1]/",         true),
        ("a prefix other than ::ffff is not mapped", "https://[::fffe:7f00:1]/",            true),
        ("ffff in another group is not mapped",      "https://[::ffff:0:7f00:1]/",          true),
        ("NAT64 is not mapped",                      "https://[64:ff9b::7f00:1]/",          true),
        ("eight full groups",                        "https://[2001:db8:0:0:0:0:0:1]/",     true),
        ("`::` for a single group",                  "https://[2001:db8:0:0:0:0::1]/",      true),
        ("a dotted quad after six groups",           "https://[2001:db8:0:0:0:0:1.2.3.4]/", true),
        // Rule 1: the scheme.
        ("the empty string",                  "",                          false),
        ("a scheme alone",                    "https:",                    false),
        ("no scheme",                         "//app.example.com/cb",      false),
        ("a bare host",                       "app.example.com",           false),
        ("http",                              "http://app.example.com/cb", false),
        ("HTTP in upper case",                "HTTP://app.example.com/cb", false),
        ("a custom scheme without authority", "com.example.app:/cb",       false),
        ("a custom scheme with authority",    "com.example.app://cb",      false),
        ("a scheme that starts with https",   "httpss://app.example.com/", false),
        ("a scheme that ends in https",       "xhttps://app.example.com/", false),
        // Rule 2: the URI parses, with an authority and a host.
        ("https without // has no authority",     "https:example.com",                          false),
        ("https with one slash has no authority", "https:/x",                                   false),
        ("an empty authority",                    "https://",                                   false),
        ("an empty host before the path",         "https:///cb",                                false),
        ("a port without a host",                 "https://:443/",                              false),
        ("userinfo without a host",               "https://user@/",                             false),
        ("userinfo and port without a host",      "https://user@:443/",                         false),
        ("localhost behind userinfo",             "https://evil.example@localhost/",            false),
        ("two @",                                 "https://a@b@app.example.com/",               false),
        ("an @ in the host",                      "https://user@app.example.com@evil.example/", false),
        ("a bad escape in the path",              "https://app.example.com/%zz",                false),
        ("an escape cut short",                   "https://app.example.com/%2",                 false),
        ("a lone % at the end",                   "https://app.example.com/%",                  false),
        ("a bad escape in the host",              "https://app%zz.example/",                    false),
        ("a bad escape in userinfo",              "https://u%zz@app.example.com/",              false),
        ("a bad escape in the query",             "https://app.example.com/?q=%g0",             false),
        ("a space in the path",                   "https://app.example.com/a b",                false),
        ("a space in the host",                   "https://app .example.com/",                  false),
        ("a tab in the path",                     "https://app.example.com/a\tb",               false),
        ("a newline at the end",                  "https://app.example.com/\n",                 false),
        ("a space in front",                      " https://app.example.com/",                  false),
        ("a < in the query",                      "https://app.example.com/?q=<x>",             false),
        ("a backtick in the path",                "https://app.example.com/`",                  false),
        ("a quote in the path",                   "https://app.example.com/\"",                 false),
        ("a brace in the path",                   "https://app.example.com/{x}",                false),
        ("a pipe in the query",                   "https://app.example.com/?a|b",               false),
        ("a backslash in the path",               "https://app.example.com/a\\b",               false),
        ("backslashes for slashes",               "https:\\\\app.example.com/",                 false),
        ("a caret in the fragment",               "https://app.example.com/#^",                 false),
        ("a bracket in the path",                 "https://app.example.com/[x]",                false),
        ("a second # in the fragment",            "https://app.example.com/#a#b",               false),
        ("non-ASCII in the path",                 "https://app.example.com/caf\u{e9}",          false),
        ("non-ASCII in the query",                "https://app.example.com/?q=\u{e9}",          false),
        ("non-ASCII in the fragment",             "https://app.example.com/#\u{e9}",            false),
        ("a port with letters",                   "https://app.example.com:8o8o/",              false),
        ("a negative port",                       "https://app.example.com:-1/",                false),
        ("two ports",                             "https://app.example.com:80:80/",             false),
        // Rule 3: the host name, decoded, lowercased, without one trailing dot.
        ("a single dot is empty once the dot is gone",     "https://./",                           false),
        ("an escaped dot alone is empty too",              "https://%2e/",                         false),
        ("localhost",                                      "https://localhost/cb",                 false),
        ("LOCALHOST",                                      "https://LOCALHOST/cb",                 false),
        ("LocalHost",                                      "https://LocalHost/cb",                 false),
        ("localhost with a port",                          "https://localhost:8443/cb",            false),
        ("localhost with userinfo",                        "https://user:pw@localhost/cb",         false),
        ("localhost.",                                     "https://localhost./cb",                false),
        ("LOCALHOST.",                                     "https://LOCALHOST./cb",                false),
        ("localhost with an escaped trailing dot",         "https://localhost%2e/",                false),
        ("the same escape in upper case",                  "https://localhost%2E/",                false),
        ("a.localhost",                                    "https://a.localhost/",                 false),
        ("foo.localhost.",                                 "https://foo.localhost./",              false),
        ("a.b.LOCALHOST",                                  "https://a.b.LOCALHOST/",               false),
        (".localhost ends in .localhost",                  "https://.localhost/",                  false),
        ("localhost spelled in escapes",                   "https://%6c%6f%63%61%6c%68%6f%73%74/", false),
        ("localhost in upper-case escapes",                "https://%6C%6F%63%61%6C%68%6F%73%74/", false),
        ("escaped capitals are lowercased after decoding", "https://%4C%4fCALHOST/",               false),
        ("an escaped dot before localhost",                "https://a%2elocalhost/",               false),
        ("an escape decoding to non-ASCII",                "https://caf%C3%A9.example/",           false),
        ("the same in lower-case escapes",                 "https://caf%c3%a9.example/",           false),
        ("a lone non-ASCII escape",                        "https://%80.example/",                 false),
        ("raw non-ASCII in the host",                      "https://caf\u{e9}.example/",           false),
        // Rule 4: IPv4 loopback in any `inet_aton` spelling.
        ("127.0.0.1",                           "https://127.0.0.1/cb",      false),
        ("127.0.0.1 with a port",               "https://127.0.0.1:8443/cb", false),
        ("127.0.0.1 with one trailing dot",     "https://127.0.0.1./cb",     false),
        ("127.1 fills three bytes",             "https://127.1/",            false),
        ("127.0.1 fills two bytes",             "https://127.0.1/",          false),
        ("one decimal number",                  "https://2130706433/",       false),
        ("a hex first part",                    "https://0x7f.0.0.1/",       false),
        ("one hex number",                      "https://0x7F000001/",       false),
        ("an upper-case 0X",                    "https://0X7F.0.0.1/",       false),
        ("hex with leading zeros",              "https://0x00007f000001/",   false),
        ("an octal first part",                 "https://0177.0.0.1/",       false),
        ("one octal number",                    "https://017700000001/",     false),
        ("hex then a short form",               "https://0x7f.1/",           false),
        ("the top of 127.0.0.0/8",              "https://127.255.255.255/",  false),
        ("the top of 127.0.0.0/8 in two parts", "https://127.16777215/",     false),
        ("digits spelled in escapes",           "https://%31%32%37.0.0.1/",  false),
        ("dots spelled in escapes",             "https://127%2e0%2e0%2e1/",  false),
        ("0 is 0.0.0.0",                        "https://0/",                false),
        ("0.0.0.0",                             "https://0.0.0.0/",          false),
        ("0.0",                                 "https://0.0/",              false),
        ("0x0",                                 "https://0x0/",              false),
        ("a bare 0x is 0, as browsers read it", "https://0x/",               false),
        ("127.0x is 127.0.0.0",                 "https://127.0X/",           false),
        ("00 is octal zero",                    "https://00/",               false),
        // Rule 5: IP literals.
        ("[::1]",                                  "https://[::1]/cb",                    false),
        ("[::1] with a port",                      "https://[::1]:8443/cb",               false),
        ("::1 in full",                            "https://[0:0:0:0:0:0:0:1]/",          false),
        ("::1 with a zero group",                  "https://[::0:1]/",                    false),
        ("::1 with a leading zero group",          "https://[0::1]/",                     false),
        ("::1 with padded groups",                 "https://[0000:0000::0001]/",          false),
        ("the unspecified ::",                     "https://[::]/",                       false),
        ("the unspecified address in full",        "https://[0:0:0:0:0:0:0:0]/",          false),
        ("mapped 127.0.0.1",                       "https://[::ffff:127.0.0.1]/",         false),
        ("mapped 127.0.0.1 in hex",                "https://[::ffff:7f00:1]/",            false),
        ("mapped in upper-case hex",               "https://[::FFFF:7F00:1]/",            false),
        ("mapped in full",                         "https://[0:0:0:0:0:ffff:127.0.0.1]/", false),
        ("mapped, another address of 127.0.0.0/8", "https://[::ffff:127.1.2.3]/",         false),
        ("mapped 0.0.0.0",                         "https://[::ffff:0.0.0.0]/",           false),
        ("mapped 0.0.0.0 in hex",                  "https://[::ffff:0:0]/",               false),
        // Literals that do not parse; their addresses would be verifiable if they did.
        ("a zone identifier",                     "https://[2001:db8::1%25eth0]/", false),
        ("a raw % in the brackets",               "https://[2001:db8::1%eth0]/",   false),
        ("IPvFuture",                             "https://[v1.abc]/",             false),
        ("IPvFuture with an upper-case V",        "https://[V1.abc]/",             false),
        ("an unclosed bracket",                   "https://[2001:db8::1/",         false),
        ("a stray ]",                             "https://2001:db8::1]/",         false),
        ("bytes after the bracket",               "https://[2001:db8::1]x/",       false),
        ("a port with letters after the bracket", "https://[2001:db8::1]:80a/",    false),
        ("empty brackets",                        "https://[]/",                   false),
        ("nine groups",                           "https://[1:2:3:4:5:6:7:8:9]/",  false),
        ("seven groups without ::",               "https://[1:2:3:4:5:6:7]/",      false),
        ("eight groups and ::",                   "https://[1:2:3:4:5:6:7::8]/",   false),
        ("two ::",                                "https://[2001:db8::1::]/",      false),
        ("three colons",                          "https://[2001:db8:::1]/",       false),
        ("a leading single colon",                "https://[:2001:db8::1]/",       false),
        ("a trailing single colon",               "https://[2001:db8::1:]/",       false),
        ("five hex digits",                       "https://[2001:db8::12345]/",    false),
        ("a non-hex digit",                       "https://[2001:db8::g]/",        false),
        ("a dotted quad with a leading zero",     "https://[::ffff:128.0.0.01]/",  false),
        ("a dotted quad over 255",                "https://[::ffff:128.0.0.256]/", false),
        ("a short dotted quad",                   "https://[::ffff:128.1]/",       false),
        ("a dotted quad before ::",               "https://[1.2.3.4::]/",          false),
        ("a dotted quad before a group",          "https://[::1.2.3.4:1]/",        false),
        ("a name in brackets",                    "https://[app.example.com]/",    false),
        // Loopback literals that do not parse either.
        ("an unclosed [::1", "https://[::1/",       false),
        ("[::1::]",          "https://[::1::]/",    false),
        ("a zone on ::1",    "https://[::1%25lo]/", false),
    ];

    #[test]
    fn redirect_uris_are_classified_as_the_rules_say() {
        let failures: Vec<_> = CASES
            .iter()
            .filter(|&&(_, uri, verifiable)| is_verifiable_redirect(uri) != verifiable)
            .map(|(about, uri, verifiable)| format!("{about}: {uri:?} should be verifiable: {verifiable}"))
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[rustfmt::skip]
    const HOSTS: &[(&str, &str, Option<&str>)] = &[
        // about, redirect_uri, host
        ("no userinfo, port or dot; lowercased", "https://User@EXAMPLE.com.:8443/x", Some("example.com")),
        ("escapes are decoded",                  "https://%6c%6fcalhost/",           Some("localhost")),
        ("decoded once, shown escaped",          "https://%2541.example/",           Some("%2541.example")),
        ("an escaped dot goes",                  "https://EXAMPLE.com%2E/",          Some("example.com")),
        ("only one trailing dot goes",           "https://localhost../",             Some("localhost.")),
        ("an IPv4 address as written",           "https://127.1/",                   Some("127.1")),
        ("IPv6 keeps its brackets",              "https://[::1]/",                   Some("[::1]")),
        ("IPv6 is lowercased",                   "https://[::FFFF:7F00:1]/",         Some("[::ffff:7f00:1]")),
        ("an IPvFuture literal",                 "https://[V1.ABC]/",                Some("[v1.abc]")),
        ("any scheme with an authority",         "http://localhost:8080/cb",         Some("localhost")),
        ("a custom scheme with an authority",    "com.example.app://cb/x",           Some("cb")),
        // None: no host, or not RFC 3986, or not shown as it is.
        ("a custom scheme without authority",       "com.example:/cb",             None),
        ("https without //",                        "https:example.com",           None),
        ("an empty host",                           "https:///cb",                 None),
        ("a host that is only a dot",               "https://./",                  None),
        ("garbage",                                 "not a uri",                   None),
        ("the empty string",                        "",                            None),
        ("a fine host, a path that does not parse", "https://app.example.com/%zz", None),
        // Bytes a host name cannot hold as they are: shown escaped again.
        ("a non-ASCII host",                     "https://caf%c3%a9.example/",       Some("caf%C3%A9.example")),
        ("a control byte",                       "https://a%00b.example/",           Some("a%00b.example")),
        ("a space",                              "https://a%20b.example/",           Some("a%20b.example")),
        ("a slash that would mislead",           "https://bank.example%2F%2Fevil.example/", Some("bank.example%2F%2Fevil.example")),
        ("an at sign that would mislead",        "https://bank.example%40evil.example/", Some("bank.example%40evil.example")),
        ("a zone identifier is not RFC 3986",       "https://[fe80::1%25eth0]/",   None),
        ("an IPv6 literal that does not parse",     "https://[::1::]/",            None),
    ];

    #[test]
    fn redirect_hosts_are_shown_normalised() {
        let failures: Vec<_> = HOSTS
            .iter()
            .map(|&(about, uri, host)| (about, uri, host, redirect_host(uri)))
            .filter(|(_, _, host, actual)| actual.as_deref() != *host)
            .map(|(about, uri, host, actual)| format!("{about}: {uri:?} gives {actual:?}, not {host:?}"))
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Puts every ASCII byte, and two non-ASCII characters, between `prefix`
    /// and `suffix`: the URI is verifiable exactly when the byte is
    /// unreserved, a sub-delim, or in `also`.
    #[track_caller]
    fn check_every_byte(prefix: &str, suffix: &str, also: &str) {
        const UNRESERVED_AND_SUB_DELIMS: &str =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=";
        let mut failures = Vec::new();
        for c in (0u8..=0x7f).map(char::from).chain(['\u{e9}', '\u{ff}']) {
            let uri = format!("{prefix}{c}{suffix}");
            let expected = UNRESERVED_AND_SUB_DELIMS.contains(c) || also.contains(c);
            if is_verifiable_redirect(&uri) != expected {
                failures.push(format!("{uri:?} should be verifiable: {expected}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_byte_of_a_path_is_checked() {
        // `?` and `#` start a query and a fragment, which take `a` alike.
        check_every_byte("https://app.example.com/x", "a", ":@/?#");
    }

    #[test]
    fn every_byte_of_a_query_is_checked() {
        check_every_byte("https://app.example.com/?x", "a", ":@/?#");
    }

    #[test]
    fn every_byte_of_a_fragment_is_checked() {
        // No second `#`.
        check_every_byte("https://app.example.com/#x", "a", ":@/?");
    }

    #[test]
    fn every_byte_of_a_host_is_checked() {
        // `/`, `?` and `#` end the host `a`; after `@`, `a` is userinfo and the host is
        // `b`; after `:`, `b` is a port that is not a number.
        check_every_byte("https://a", "b/", "/?#@");
    }

    #[test]
    fn every_byte_of_userinfo_is_checked() {
        // `/`, `?` and `#` end the authority early: the host is `a`, the rest a valid path.
        check_every_byte("https://a", "b@app.example.com/", ":/?#");
    }

    #[test]
    fn every_byte_of_a_scheme_is_checked() {
        for c in (0u8..=0x7f).map(char::from).chain(['\u{e9}']) {
            assert_eq!(
                is_scheme(&format!("{c}")),
                c.is_ascii_alphabetic(),
                "first byte {c:?}"
            );
            let later = c.is_ascii_alphanumeric() || "+-.".contains(c);
            assert_eq!(is_scheme(&format!("h{c}")), later, "later byte {c:?}");
        }
        assert!(!is_scheme(""), "an empty scheme");
    }

    #[test]
    fn long_uris_are_read_in_linear_time() {
        // A quadratic step would not finish on the megabyte inputs.
        for n in [10_000, 1_000_000] {
            let a = "a".repeat(n);
            let cases = [
                ("a long path", format!("https://app.example.com/{a}"), true),
                (
                    "a long query of escapes",
                    format!("https://a.example/?{}", "%41".repeat(n / 3)),
                    true,
                ),
                ("a long host", format!("https://{a}.example/"), true),
                (
                    "a long host of escapes",
                    format!("https://{}/", "%61".repeat(n / 3)),
                    true,
                ),
                (
                    "a long octal zero is 0.0.0.0",
                    format!("https://{}/", "0".repeat(n)),
                    false,
                ),
                (
                    "long escaped zeros are 0.0.0.0",
                    format!("https://{}/", "%30".repeat(n / 3)),
                    false,
                ),
                (
                    "many labels under localhost",
                    format!("https://{}localhost/", "a.".repeat(n / 2)),
                    false,
                ),
                (
                    "a long decimal number is a name",
                    format!("https://{}/", "9".repeat(n)),
                    true,
                ),
                (
                    "many parts are a name",
                    format!("https://{}1/", "1.".repeat(n / 2)),
                    true,
                ),
                ("long userinfo", format!("https://{a}@app.example.com/"), true),
                (
                    "a long port",
                    format!("https://app.example.com:{}/", "8".repeat(n)),
                    true,
                ),
                (
                    "many @",
                    format!("https://{}app.example.com/", "@".repeat(n)),
                    false,
                ),
                (
                    "many colons in brackets",
                    format!("https://[{}]/", ":".repeat(n)),
                    false,
                ),
                (
                    "many groups in brackets",
                    format!("https://[{}1]/", "1:".repeat(n / 2)),
                    false,
                ),
                (
                    "many % in a path",
                    format!("https://app.example.com/{}", "%".repeat(n)),
                    false,
                ),
            ];
            for (about, uri, verifiable) in cases {
                assert_eq!(is_verifiable_redirect(&uri), verifiable, "{about}, {n} bytes");
            }
        }
    }

    #[test]
    fn a_broken_escape_does_not_panic_the_decoder() {
        // The INVARIANT of `is_encoded` keeps these out of `Decoded`: a cut-short
        // escape passes through as it is, a non-hex one ends the bytes.
        assert_eq!(Decoded(b"a%4").collect::<Vec<_>>(), b"a%4");
        assert_eq!(Decoded(b"a%zzb").collect::<Vec<_>>(), b"a");
    }

    /// A naive reading of the normalisation rule: decode the whole name into a
    /// buffer, lowercase it, then pop one dot.
    fn naive_normalised(raw: &str) -> Vec<u8> {
        let bytes = raw.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        decoded.make_ascii_lowercase();
        if decoded.last() == Some(&b'.') {
            decoded.pop();
        }
        decoded
    }

    /// A naive `inet_aton`: split on dots, read each part with `from_str_radix`.
    fn naive_ipv4(name: &str) -> Option<u32> {
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 4 {
            return None;
        }
        let mut values = Vec::new();
        for part in &parts {
            let (digits, radix) = match part.strip_prefix("0x") {
                Some(hex) => (hex, 16),
                None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
                None => (*part, 10),
            };
            // A bare `0x` is 0 (as browsers read it); any other empty part is no number.
            if (digits.is_empty() && radix != 16) || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            let value = if digits.is_empty() {
                0
            } else {
                u64::from_str_radix(digits, radix).ok()?
            };
            values.push(value);
        }
        let width = 8 * (5 - values.len());
        let (last, init) = values.split_last()?;
        if init.iter().any(|&v| v > 255) || *last >= 1 << width {
            return None;
        }
        let high = init.iter().fold(0u64, |acc, &v| acc << 8 | v);
        u32::try_from(high << width | last).ok()
    }

    /// Texts made of up to `max` of `tokens`, so that near misses are common.
    fn joined(tokens: &'static str, max: usize) -> impl Strategy<Value = String> {
        let tokens: Vec<&str> = tokens.split(' ').collect();
        prop::collection::vec(prop::sample::select(tokens), 0..max).prop_map(|tokens| tokens.concat())
    }

    fn config() -> ProptestConfig {
        // No regression file inside src/: a failure prints its minimal case.
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    // Tokens separated by spaces.
    const IPV6_TOKENS: &str = "0 1 ff FFFF 7f00 12345 g : :: . 127.0.0.1 01";
    const IPV4_TOKENS: &str = "0 00 0x 0x7f 7f 127 1 255 256 08 4294967296 . a";
    const NAME_TOKENS: &str = "a A . %2e %2E %41 %6c %25 %C3%A9 localhost 2e";
    const URI_TOKENS: &str = "https:// http: // / @ : [ ] ::1 a %2e %zz 127.1 localhost . ? # < 0x v1.";

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn ipv6_text_forms_agree_with_std(text in joined(IPV6_TOKENS, 14)) {
            let std = text.parse::<Ipv6Addr>().ok().map(u128::from);
            prop_assert_eq!(parse_ipv6(&text), std, "{:?}", text);
        }

        #[test]
        fn every_ipv6_address_std_prints_parses_back(address: u128, mapped: bool) {
            let address = if mapped { address & 0xffff_ffff | 0xffff << 32 } else { address };
            prop_assert_eq!(parse_ipv6(&Ipv6Addr::from(address).to_string()), Some(address));
        }

        #[test]
        fn ipv4_spellings_agree_with_a_naive_reading(name in joined(IPV4_TOKENS, 12)) {
            prop_assert_eq!(parse_ipv4(name.bytes()), naive_ipv4(&name), "{:?}", name);
        }

        #[test]
        fn names_normalise_as_a_naive_reading(raw in joined(NAME_TOKENS, 8)) {
            prop_assert!(is_encoded(&raw, is_reg_name_byte));
            prop_assert_eq!(normalised(&raw).collect::<Vec<_>>(), naive_normalised(&raw), "{:?}", raw);
        }

        #[test]
        fn a_verifiable_redirect_always_has_a_host(uri in joined(URI_TOKENS, 10)) {
            if is_verifiable_redirect(&uri) {
                prop_assert!(redirect_host(&uri).is_some(), "{:?}", uri);
            }
        }

        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,64}") {
            for uri in [text.clone(), format!("https://{text}"), format!("https://[{text}]/")] {
                let _ = is_verifiable_redirect(&uri);
                let _ = redirect_host(&uri);
            }
        }
    }
}

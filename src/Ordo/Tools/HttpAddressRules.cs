using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Ordo.Tools;

/// <summary>
/// Which addresses an http tool may not reach: link-local networks (169.254.0.0/16, fe80::/10) and the well-known cloud
/// metadata endpoints, by address and by name, unless the tool's <c>allow_addresses</c> lists them. Loopback and private
/// networks are allowed (services on the same machine or network are what tools usually call).
/// </summary>
/// <remarks>Immutable, thread-safe.</remarks>
internal sealed class HttpAddressRules
{
    private static readonly Network[] Refused =
    [
        new(IPAddress.Parse("169.254.0.0"), 16, "a link-local address (169.254.0.0/16), where cloud metadata services answer"),
        new(IPAddress.Parse("100.100.100.200"), 32, "a cloud metadata address (Alibaba Cloud)"),
        new(IPAddress.Parse("192.0.0.192"), 32, "a cloud metadata address (Oracle Cloud)"),
        new(IPAddress.Parse("fe80::"), 10, "a link-local address (fe80::/10)"),
        new(IPAddress.Parse("fd00:ec2::254"), 128, "a cloud metadata address (AWS)"),
        new(IPAddress.Parse("fd20:ce::254"), 128, "a cloud metadata address (Google Cloud)"),
    ];

    private static readonly HashSet<string> RefusedNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal", "metadata.tencentyun.com",
    };

    private static readonly byte[] Nat64Prefix = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

    private readonly Network[] _allowed;
    private readonly HashSet<string> _allowedNames;

    private HttpAddressRules(Network[] allowed, HashSet<string> allowedNames, string key)
    {
        _allowed = allowed;
        _allowedNames = allowedNames;
        Key = key;
    }

    /// <summary>The rules of a tool without <c>allow_addresses</c>.</summary>
    public static HttpAddressRules Default { get; } = new([], new(StringComparer.OrdinalIgnoreCase), "");

    /// <summary>The allowlist in one canonical form: tools with equal keys may share connections.</summary>
    public string Key { get; }

    /// <summary>The rules of a tool's <c>allow_addresses</c>.</summary>
    /// <exception cref="FormatException">An entry is not an address, a network or a host name; the message says which.</exception>
    public static HttpAddressRules For(IReadOnlyList<string> allowAddresses)
    {
        if (allowAddresses.Count == 0) return Default;
        var networks = new List<Network>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in allowAddresses)
        {
            if (ParseEntry(entry, out var network, out var name) is { } error) throw new FormatException(error);
            if (network is not null) networks.Add(network);
            if (name is not null) names.Add(name);
        }

        var key = string.Join(',', networks.Select(n => $"{n.Address}/{n.Prefix}").Concat(names.Select(n => n.ToLowerInvariant())).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        return new HttpAddressRules([.. networks], names, key);
    }

    /// <summary>Checks one <c>allow_addresses</c> entry: an IP address, a network in CIDR form or a host name.</summary>
    /// <returns>Null when it is valid, else what is wrong with it.</returns>
    public static string? Validate(string entry) => ParseEntry(entry, out _, out _);

    /// <summary>Why <paramref name="address"/> may not be reached, or null when it may.</summary>
    public string? Refusal(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var candidates = Unwrap(address);
        foreach (var refused in Refused)
        {
            foreach (var a in candidates)
            {
                if (refused.Contains(a) && !_allowed.Any(n => candidates.Any(n.Contains))) return refused.Why;
            }
        }

        return null;
    }

    /// <summary>Why the host <paramref name="host"/> may not be reached by name, or null when it may.</summary>
    public string? Refusal(string host)
    {
        var name = host.TrimEnd('.');
        return RefusedNames.Contains(name) && !_allowedNames.Contains(name) ? "a cloud metadata host name" : null;
    }

    /// <summary>
    /// The forms of an address to check: itself, and the IPv4 address it carries when it is IPv4-mapped
    /// (<c>::ffff:169.254.169.254</c>), IPv4-compatible (<c>::169.254.169.254</c>) or NAT64 (<c>64:ff9b::a9fe:a9fe</c>).
    /// </summary>
    private static IPAddress[] Unwrap(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return [address];
        if (address.IsIPv4MappedToIPv6) return [address, address.MapToIPv4()];
        var bytes = address.GetAddressBytes();
        var head = bytes.AsSpan(0, 12);
        if (head.SequenceEqual(Nat64Prefix) || (head.IndexOfAnyExcept((byte)0) < 0 && !address.Equals(IPAddress.IPv6Loopback) && !address.Equals(IPAddress.IPv6Any)))
        {
            return [address, new IPAddress(bytes.AsSpan(12, 4))];
        }

        return [address];
    }

    private static string? ParseEntry(string entry, out Network? network, out string? name)
    {
        network = null;
        name = null;
        var text = entry.Trim();
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (IPAddress.TryParse(addressText, out var address) && !addressText.Contains('%', StringComparison.Ordinal))
        {
            var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            var prefix = bits;
            if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits))
            {
                return $"'{entry}' is not a network: the prefix length after '/' must be 0 to {bits}";
            }

            network = new Network(address, prefix, "");
            return null;
        }

        if (slash < 0 && Uri.CheckHostName(text) == UriHostNameType.Dns)
        {
            name = text.TrimEnd('.');
            return null;
        }

        return $"'{entry}' is not an IP address, a network (169.254.0.0/16) or a host name";
    }

    private sealed record Network(IPAddress Address, int Prefix, string Why)
    {
        public bool Contains(IPAddress candidate)
        {
            if (candidate.AddressFamily != Address.AddressFamily) return false;
            Span<byte> a = stackalloc byte[16], b = stackalloc byte[16];
            Address.TryWriteBytes(a, out var length);
            candidate.TryWriteBytes(b, out _);
            var whole = Prefix / 8;
            if (!a[..whole].SequenceEqual(b[..whole])) return false;
            var rest = Prefix % 8;
            if (rest == 0 || whole >= length) return true;
            var mask = (byte)(0xFF << (8 - rest));
            return (a[whole] & mask) == (b[whole] & mask);
        }
    }
}

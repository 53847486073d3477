using System.Security.Cryptography;
using System.Text;

namespace Ordo.Server.Auth;

/// <summary>Makes API keys and their hashes. A key is <c>ordo_</c> and 43 URL-safe characters (32 random bytes).</summary>
public static class ApiKeys
{
    /// <summary>The prefix of every key.</summary>
    public const string Prefix = "ordo_";

    /// <summary>A new random key.</summary>
    public static string NewKey() => Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    /// <summary>A new public key id (shown in lists, used to revoke): <c>key_</c> and 16 hex digits.</summary>
    public static string NewKeyId() => "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>The stored form of a key: <c>sha256:</c> and the lowercase hex SHA-256 of its UTF-8 bytes.</summary>
    public static string Hash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    /// <summary>Compares two hashes in constant time (the time does not tell how many characters matched).</summary>
    public static bool SameHash(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a.ToLowerInvariant()), Encoding.ASCII.GetBytes(b.ToLowerInvariant()));
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

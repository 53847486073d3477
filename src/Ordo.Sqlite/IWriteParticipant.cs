using Microsoft.Data.Sqlite;

namespace Ordo.Sqlite;

/// <summary>
/// Something that adds its own rows to each group commit of <see cref="GroupCommitWriter"/>, from what the group's
/// writes collected: it forgets what a write that failed in its savepoint collected, writes the rest just before the
/// group commits, and learns whether it did.
/// </summary>
internal interface IWriteParticipant
{
    /// <summary>A mark before a write runs, to undo what it collected if it fails.</summary>
    int Mark();

    /// <summary>The write after <paramref name="mark"/> was rolled back to its savepoint.</summary>
    void Undo(int mark);

    /// <summary>Writes what the group collected, in its transaction, just before it commits.</summary>
    void BeforeCommit(SqliteConnection connection);

    /// <summary>The group committed.</summary>
    void Committed();

    /// <summary>The group was rolled back: nothing it collected was written.</summary>
    void Abandoned();
}

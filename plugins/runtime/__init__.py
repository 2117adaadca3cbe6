"""The sub-agent runtime: agent loop, worktrees and the pieces a sub-agent runs with."""

"""swarmd's built-in sub-agent tools (entry point ``builtin-tools``).

=============  =========  ====================================================
tool           read-only  what it does
=============  =========  ====================================================
read           yes        numbered lines of a text file (offset/limit)
write          no         create or overwrite a file
edit           no         exact search and replace (unique match or replace_all)
multiedit      no         several edits across files, all or nothing
list           yes        a directory's entries
glob           yes        files matching a glob (``**`` supported)
grep           yes        regex search in files (include filter, limit)
bash           no         a shell command in the worktree (timeout, group kill)
swarm_share    yes        publish/get/query/list/wait shared results
=============  =========  ====================================================

"Read-only" tools never modify the repository; they are the ones offered to
read-only subtasks (swarm_share writes only to the swarm's shared results).
"""

from __future__ import annotations

from typing import Any

from swarmd.plugins import hookimpl
from swarmd.plugins.tool import Tool
from swarmd.plugins.tools.bash import BashTool
from swarmd.plugins.tools.files import EditTool, ListTool, MultiEditTool, ReadTool, WriteTool
from swarmd.plugins.tools.search import GlobTool, GrepTool
from swarmd.plugins.tools.share import SwarmShareTool

__all__ = [
    "BUILTIN_TOOLS",
    "BashTool",
    "EditTool",
    "GlobTool",
    "GrepTool",
    "ListTool",
    "MultiEditTool",
    "ReadTool",
    "SwarmShareTool",
    "WriteTool",
    "swarmd_register_tools",
]

#: In the order they are offered to the model.
BUILTIN_TOOLS: tuple[type[Tool], ...] = (
    ReadTool,
    WriteTool,
    EditTool,
    MultiEditTool,
    ListTool,
    GlobTool,
    GrepTool,
    BashTool,
    SwarmShareTool,
)


@hookimpl
def swarmd_register_tools(registry: Any) -> None:
    for tool in BUILTIN_TOOLS:
        registry.add(tool)

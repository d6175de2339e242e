"""`hf_repo_files` (files.py) and `hf_repo_git` (git.py): files, branches, tags, pull requests and repositories on the Hub.

Reads (list, read, list_refs, list_prs, get_pr) run at once. Every write is a Hub write: it waits
for a click on an approval card built by `describe`, which shows the repository, the branch and,
for a small text file, the diff against what the Hub holds now. A commit is atomic on the Hub, so
a failed write leaves nothing half-written. Hub errors come back as tool results that say what to
do next (a 403 on a commit suggests a pull request, a missing revision points to list_refs).
"""

from intern.agent.tools.repos.files import RepoFilesArgs, repo_files_tool
from intern.agent.tools.repos.git import GIT_REQUIRED, RepoGitArgs, repo_git_tool

__all__ = ["GIT_REQUIRED", "RepoFilesArgs", "RepoGitArgs", "repo_files_tool", "repo_git_tool"]

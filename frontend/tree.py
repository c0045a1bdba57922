"""Where each task of a tree can move: up, down, in (under the task above) and out.

Pure arithmetic on the backend's task tree; each move is the `parent_id` and
child `index` that the backend's move call takes (index counts the siblings
without the moving task, None meaning last).
"""


def plan_moves(tasks, parent=None, grandparent_id=None, parent_index=None):
    """Give every task of the tree a `moves` dict {up, down, indent, outdent}: target or None."""
    parent_id = parent["id"] if parent else None
    last = len(tasks) - 1
    for i, task in enumerate(tasks):
        task["moves"] = {
            "up": {"parent_id": parent_id, "index": i - 1} if i > 0 else None,
            "down": {"parent_id": parent_id, "index": i + 1} if i < last else None,
            "indent": {"parent_id": tasks[i - 1]["id"], "index": None} if i > 0 else None,
            "outdent": {"parent_id": grandparent_id, "index": parent_index + 1} if parent else None,
        }
        plan_moves(task["children"], task, parent_id, i)
    return tasks


def flatten(tasks, depth=0):
    """(task, depth) for every task of the tree, in order: the choices of a "put under" list."""
    out = []
    for task in tasks:
        out.append((task, depth))
        out += flatten(task["children"], depth + 1)
    return out


def count(tasks):
    """(done, total) over the whole tree."""
    pairs = flatten(tasks)
    return sum(1 for task, _ in pairs if task["done"]), len(pairs)

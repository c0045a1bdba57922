"""Generate a realistic journal in the seed's style, of any size (for benchmarks)."""
import datetime as dt
import random


def generate(tasks, tasks_per_day=100, seed=1):
    """A Markdown journal with `tasks` checklist items, nested up to 3 deep, over working days."""
    rng = random.Random(seed)
    lines = ["# kyb", "Generated work journal", ""]
    date = dt.date(2024, 1, 1)
    made = 0
    while made < tasks:
        while date.weekday() >= 5:
            date += dt.timedelta(days=1)
        start = rng.choice(["8:00", "8:30", "9:00", "9:30"])
        lines += [f"## Dag {date.day}.{date.month}.{date.year % 100} {start} - 16:30", ""]
        depth = 0
        for _ in range(min(tasks_per_day, tasks - made)):
            depth = rng.choice([0, 0, min(depth + 1, 3), max(depth - 1, 0)])
            mark = "x" if rng.random() < 0.7 else " "
            lines.append(f"{'    ' * depth}- [{mark}] Task {made}: read `kubectl` docs https://k8s.io/{made}")
            made += 1
        lines.append("")
        date += dt.timedelta(days=1)
    lines += ["### Backlog", "- [ ] Setup keycloak", ""]
    return "\n".join(lines)

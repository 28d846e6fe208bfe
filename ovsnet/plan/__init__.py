"""Planning: what a plan is (model.py), how the kinds make one (planner.py), the host before ovsnet (offline.py)."""

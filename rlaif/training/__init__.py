"""Models and their training: references and loading (model_refs, models), sampling (generation), the trainer
arguments, resume and curves every stage shares (trainer), the starting policy, the reward model, DPO and the online
algorithms with their rewards, checkpoints, multi-process launch and Ray scale-out."""

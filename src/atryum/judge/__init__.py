"""Charter judge: `ai_evaluation` rules decide calls against the calling agent's charter."""

"""training/synthesize"""

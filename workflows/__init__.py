"""ferrogym.workflows"""

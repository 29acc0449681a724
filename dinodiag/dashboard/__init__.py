"""What the dashboard's pages show, without Streamlit: the sidebar's state, labels and
badges, pictures of crops, charts of sampled statistics and training curves.

The pages (``pages/``) lay out widgets and call these; nothing here imports Streamlit, so
every rule the dashboard follows is tested without a browser.
"""

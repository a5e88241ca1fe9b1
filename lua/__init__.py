"""The course's Lua scripts, installed as the package data ``helpers.lua`` (read by ``helpers.scripts``)."""

# Traditional Chinese as Taiwan writes numbers and money: 1,234,567.89 (Django's own zh_Hant has no grouping
# separator). The portal's dates and times are ISO in both languages (portal_tags.utc), so a date field's first
# input format, the one a form redraws its value with, is ISO too: <input type="date"> takes nothing else.
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%Y/%m/%d"]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"]

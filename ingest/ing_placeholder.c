int ing_placeholder(void);
int ing_placeholder(void)
{
    return 0;
}
